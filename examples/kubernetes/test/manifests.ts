import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';

/** A manifest as parsed from YAML: what `kubectl apply` sends. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export const exampleDir = fileURLToPath(new URL('..', import.meta.url));

/** Every document of every `*.yaml` here, in the order `kubectl apply -f` applies them. */
export function loadManifests(): { file: string; manifest: Manifest }[] {
  return readdirSync(exampleDir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(`${exampleDir}/${file}`, 'utf8')).map((document) => {
        if (document.errors.length > 0) throw document.errors[0];
        return { file, manifest: document.toJS() as Manifest };
      }),
    );
}

/** The manifest of that kind and name; throws when there is none. */
export function findManifest(kind: string, name: string): Manifest {
  const found = loadManifests().find(
    ({ manifest }) => manifest.kind === kind && manifest.metadata.name === name,
  );
  if (found === undefined) throw new Error(`no ${kind} ${name} in ${exampleDir}`);
  return found.manifest;
}

/** kubernetes-models' classes, which validate against the API's OpenAPI schemas. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
};

/** @kubernetes/client-node's model class for each kind, whose field lists the walk below reads. */
const CLIENT_TYPES: Record<string, string> = {
  'v1/Namespace': 'V1Namespace',
  'v1/Service': 'V1Service',
  'v1/ServiceAccount': 'V1ServiceAccount',
  'v1/ConfigMap': 'V1ConfigMap',
  'apps/v1/Deployment': 'V1Deployment',
  'rbac.authorization.k8s.io/v1/Role': 'V1Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'V1RoleBinding',
};

/**
 * What is wrong with a manifest: the schema's findings (types, required fields, enums) and, as
 * `kubectl apply --validate=strict` reports them, fields the API does not know (a typo the
 * schemas let through, since they allow extra properties).
 */
export function problems(manifest: Manifest): string[] {
  const kind = `${manifest.apiVersion}/${manifest.kind}`;
  const Model = MODELS[kind];
  const clientType = CLIENT_TYPES[kind];
  if (Model === undefined || clientType === undefined) return [`${kind}: not a kind this checks`];
  const found: string[] = [];
  try {
    new Model(manifest as never).validate();
  } catch (error) {
    found.push((error as Error).message);
  }
  unknownFields(manifest, clientType, kind, found);
  return found;
}

interface Attribute {
  baseName: string;
  type: string;
}

function unknownFields(value: unknown, type: string, path: string, found: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array !== null) {
    if (!Array.isArray(value)) return;
    for (const [i, item] of value.entries()) {
      unknownFields(item, array[1] as string, `${path}[${i}]`, found);
    }
    return;
  }
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] }>)[
    type
  ];
  const attributes = model?.getAttributeTypeMap?.();
  if (attributes === undefined) return; // a map, a quantity, IntOrString…: no fields to check
  const known = new Map(attributes.map((a) => [a.baseName, a.type]));
  for (const [key, child] of Object.entries(value)) {
    const childType = known.get(key);
    if (childType === undefined) found.push(`${path}.${key}: unknown field`);
    else unknownFields(child, childType, `${path}.${key}`, found);
  }
}
