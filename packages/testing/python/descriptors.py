"""Protobuf message classes built at run time from a FileDescriptorSet (what `buf build` writes),
so that the Python peers of Switchyard's tests need no protoc.

Other packages' Python fixtures import it with this directory on PYTHONPATH; @switchyard/testing
exports the directory as PYTHON_PATH.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def message_classes(path, package, names):
    """The message classes `package`.`name` for each of `names`, in order."""
    descriptors = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        descriptors.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in descriptors.file:
        pool.Add(file)
    # GetMessageClass is the API from protobuf 4.22 on; Debian's 4.21 only has
    # the MessageFactory form, which later releases removed.
    if hasattr(message_factory, "GetMessageClass"):
        message_class = message_factory.GetMessageClass
    else:
        message_class = message_factory.MessageFactory(pool).GetPrototype
    return tuple(message_class(pool.FindMessageTypeByName(f"{package}.{name}")) for name in names)
