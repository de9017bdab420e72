import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { experimental } from '@grpc/grpc-js';

type CertificateProvider = experimental.CertificateProvider;
type CaCertificateUpdate = experimental.CaCertificateUpdate;
type CaCertificateUpdateListener = experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdate = experimental.IdentityCertificateUpdate;
type IdentityCertificateUpdateListener = experimental.IdentityCertificateUpdateListener;

/** Options of {@link watchCertificateFiles}. */
export interface CertificateFilesOptions {
  /** PEM bundle of the CAs that peers' certificates must chain to. */
  caFile?: string;
  /** PEM certificate chain to present, leaf first. Requires {@link keyFile}. */
  certFile?: string;
  /** PEM private key of the leaf in {@link certFile}. */
  keyFile?: string;
  /** How often the files are read again while credentials are in use. Default 10 000 ms. */
  refreshIntervalMs?: number;
  /** Called after a change on disk has been loaded and handed to grpc-js. */
  onReload?: (certificate: LoadedCertificate | undefined) => void;
  /**
   * Called when changed files cannot be loaded; the previous certificates stay in use. Called
   * once per distinct error, not on every refresh. Default: `process.emitWarning`.
   */
  onError?: (error: CertificateFileError) => void;
}

/** The leaf certificate currently presented. */
export interface LoadedCertificate {
  /** Upper-case hex, as node reports it. */
  readonly serialNumber: string;
  readonly subject: string;
  readonly subjectAltName: string | undefined;
  readonly validFrom: Date;
  readonly validTo: Date;
}

/** A certificate, key or CA file that cannot be read or does not fit with the others. */
export class CertificateFileError extends Error {
  override readonly name = 'CertificateFileError';
  constructor(
    /** The file at fault. */
    readonly file: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${message}`, options);
  }
}

interface FileContents {
  ca: Buffer | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
  /** The first certificate of `cert`, parsed. */
  leaf: X509Certificate | undefined;
}

/**
 * CA bundle, certificate and key files, loaded and validated, and re-read while grpc-js uses
 * them: a `CertificateProvider` for grpc-js's certificate-provider credentials
 * (`@grpc/grpc-js` ≥ 1.12, `experimental` namespace; see {@link mtlsServerCredentials}).
 *
 * grpc-js calls `setSecureContext` on its TLS server with each update, so new connections
 * present the new certificate while established ones keep the one they were opened with.
 * A change is applied only once all files form a valid set (the key matches the leaf, every
 * certificate parses), so a rotation that writes the certificate and the key one after the other
 * is picked up on the first refresh that sees both; until then the previous set stays in use.
 * Files are polled rather than watched: Kubernetes updates secret volumes by swapping a symlinked
 * directory, which `fs.watch` on the files does not report.
 */
export class CertificateFiles implements CertificateProvider {
  readonly #files: Readonly<CertificateFilesOptions>;
  readonly #refreshIntervalMs: number;
  readonly #onReload: (certificate: LoadedCertificate | undefined) => void;
  readonly #onError: (error: CertificateFileError) => void;
  #contents: FileContents;
  #certificate: LoadedCertificate | undefined;
  #lastError: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #loading: Promise<boolean> | undefined;
  readonly #caListeners = new Set<CaCertificateUpdateListener>();
  readonly #identityListeners = new Set<IdentityCertificateUpdateListener>();

  private constructor(options: CertificateFilesOptions, contents: FileContents) {
    const {
      refreshIntervalMs = 10_000,
      onReload = () => {},
      onError = (error) => process.emitWarning(error.message, 'CertificateFileWarning'),
      ...files
    } = options;
    this.#files = files;
    this.#refreshIntervalMs = refreshIntervalMs;
    this.#onReload = onReload;
    this.#onError = onError;
    this.#contents = contents;
    this.#certificate = describe(contents.leaf);
  }

  /** Reads and validates the files; rejects with a {@link CertificateFileError} naming the bad file. */
  static async load(options: CertificateFilesOptions): Promise<CertificateFiles> {
    const { caFile, certFile, keyFile, refreshIntervalMs } = options;
    if ((certFile === undefined) !== (keyFile === undefined)) {
      throw new TypeError('certFile and keyFile must be given together');
    }
    if (caFile === undefined && certFile === undefined) {
      throw new TypeError('give caFile, or certFile and keyFile, or all three');
    }
    if (
      refreshIntervalMs !== undefined &&
      !(Number.isFinite(refreshIntervalMs) && refreshIntervalMs > 0)
    ) {
      throw new RangeError(`refreshIntervalMs must be a positive number, got ${refreshIntervalMs}`);
    }
    return new CertificateFiles(options, await readValidated(options));
  }

  /** Whether a CA bundle was given: peers' certificates can be verified. */
  get hasCa(): boolean {
    return this.#files.caFile !== undefined;
  }

  /** Whether a certificate and key were given: this side can present a certificate. */
  get hasIdentity(): boolean {
    return this.#files.certFile !== undefined;
  }

  /** The leaf certificate presented to new connections; `undefined` without {@link hasIdentity}. */
  get certificate(): LoadedCertificate | undefined {
    return this.#certificate;
  }

  /**
   * Reads the files now instead of at the next refresh. Resolves `true` when they changed and
   * the new set is in use, `false` when nothing changed or the new set is invalid (reported to
   * `onError`).
   */
  reload(): Promise<boolean> {
    this.#loading ??= this.#reload().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #reload(): Promise<boolean> {
    let contents: FileContents;
    try {
      contents = await readValidated(this.#files);
    } catch (error) {
      // readValidated throws nothing else: every failure is tied to a file.
      const failure = error as CertificateFileError;
      if (failure.message !== this.#lastError) {
        this.#lastError = failure.message;
        this.#onError(failure);
      }
      return false;
    }
    this.#lastError = undefined;
    if (sameContents(contents, this.#contents)) return false;
    this.#contents = contents;
    this.#certificate = describe(contents.leaf);
    // The CA first: grpc-js rebuilds its secure context on each update, synchronously, so no
    // connection is accepted between the two.
    const ca = this.#caUpdate();
    for (const listener of this.#caListeners) listener(ca);
    const identity = this.#identityUpdate();
    for (const listener of this.#identityListeners) listener(identity);
    this.#onReload(this.#certificate);
    return true;
  }

  #caUpdate(): CaCertificateUpdate | null {
    return this.#contents.ca ? { caCertificate: this.#contents.ca } : null;
  }

  #identityUpdate(): IdentityCertificateUpdate | null {
    const { cert, key } = this.#contents;
    return cert && key ? { certificate: cert, privateKey: key } : null;
  }

  // The listener methods implement grpc-js's CertificateProvider. Updates reach a new listener on
  // the next tick, as grpc-js's own FileWatcherCertificateProvider does: its credentials register
  // their listener before their watchers, so a synchronous call would reach nobody.

  /** @internal grpc-js `CertificateProvider` */
  addCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.#caListeners.add(listener);
    process.nextTick(listener, this.#caUpdate());
    this.#startRefreshing();
  }

  /** @internal grpc-js `CertificateProvider` */
  removeCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.#caListeners.delete(listener);
    this.#maybeStopRefreshing();
  }

  /** @internal grpc-js `CertificateProvider` */
  addIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.#identityListeners.add(listener);
    process.nextTick(listener, this.#identityUpdate());
    this.#startRefreshing();
  }

  /** @internal grpc-js `CertificateProvider` */
  removeIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.#identityListeners.delete(listener);
    this.#maybeStopRefreshing();
  }

  #startRefreshing(): void {
    if (this.#timer !== undefined) return;
    // Unreferenced: a server or channel keeps the process alive, refreshing alone should not.
    this.#timer = setInterval(() => void this.reload(), this.#refreshIntervalMs).unref();
  }

  // Credentials remove their listeners when the last server or channel using them closes, so
  // nothing keeps polling for credentials nobody uses.
  #maybeStopRefreshing(): void {
    if (this.#caListeners.size > 0 || this.#identityListeners.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Loads {@link CertificateFiles}; see there. */
export function watchCertificateFiles(options: CertificateFilesOptions): Promise<CertificateFiles> {
  return CertificateFiles.load(options);
}

async function readValidated(files: CertificateFilesOptions): Promise<FileContents> {
  const { caFile, certFile, keyFile } = files;
  const [ca, cert, key] = await Promise.all([caFile, certFile, keyFile].map(readIfGiven));
  if (caFile !== undefined) {
    pemCertificates(caFile, ca!).forEach((pem, index) => {
      parseCertificate(caFile, pem, `certificate ${index + 1}`);
    });
  }
  let leaf: X509Certificate | undefined;
  if (certFile !== undefined && keyFile !== undefined) {
    leaf = parseCertificate(
      certFile,
      pemCertificates(certFile, cert!)[0]!,
      'the first certificate',
    );
    assertCurrent(certFile, leaf);
    if (!leaf.checkPrivateKey(parsePrivateKey(keyFile, key!))) {
      throw new CertificateFileError(
        keyFile,
        `private key does not belong to the certificate in ${certFile}`,
      );
    }
  }
  try {
    // The same check grpc-js makes before it switches contexts, so an update never fails there.
    createSecureContext({ ca, cert, key });
  } catch (error) {
    const file = [certFile, keyFile, caFile].filter(Boolean).join(', ');
    throw new CertificateFileError(file, `unusable for TLS: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { ca, cert, key, leaf };
}

async function readIfGiven(file: string | undefined): Promise<Buffer | undefined> {
  if (file === undefined) return undefined;
  try {
    return await readFile(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new CertificateFileError(file, `cannot read (${reason})`, { cause: error });
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function pemCertificates(file: string, contents: Buffer): string[] {
  const blocks = contents.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new CertificateFileError(file, 'no PEM certificate found');
  return blocks;
}

function parseCertificate(file: string, pem: string, which: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new CertificateFileError(file, `${which} is not a valid X.509 certificate`, {
      cause: error,
    });
  }
}

// Peers refuse an expired certificate; node's TLS server does so by closing the connection
// without an alert, so the client would only learn "Failed to connect". Saying it here, where the
// file is named, is the one place the cause can be told.
function assertCurrent(file: string, leaf: X509Certificate): void {
  const now = Date.now();
  const validFrom = new Date(leaf.validFrom);
  const validTo = new Date(leaf.validTo);
  if (now > validTo.getTime()) {
    throw new CertificateFileError(file, `certificate expired at ${validTo.toISOString()}`);
  }
  if (now < validFrom.getTime()) {
    throw new CertificateFileError(
      file,
      `certificate is not valid before ${validFrom.toISOString()}`,
    );
  }
}

function parsePrivateKey(file: string, contents: Buffer): KeyObject {
  try {
    return createPrivateKey(contents);
  } catch (error) {
    throw new CertificateFileError(file, 'not a PEM private key', { cause: error });
  }
}

function describe(leaf: X509Certificate | undefined): LoadedCertificate | undefined {
  return (
    leaf && {
      serialNumber: leaf.serialNumber,
      subject: leaf.subject,
      subjectAltName: leaf.subjectAltName,
      validFrom: new Date(leaf.validFrom),
      validTo: new Date(leaf.validTo),
    }
  );
}

function sameContents(a: FileContents, b: FileContents): boolean {
  const same = (x: Buffer | undefined, y: Buffer | undefined) =>
    x === undefined ? y === undefined : y !== undefined && x.equals(y);
  return same(a.ca, b.ca) && same(a.cert, b.cert) && same(a.key, b.key);
}
