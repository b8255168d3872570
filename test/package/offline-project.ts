import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface LockEntry {
  readonly version?: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly peerDependenciesMeta?: Readonly<Record<string, { readonly optional?: boolean }>>;
  readonly [field: string]: unknown;
}

interface Lockfile {
  readonly packages: Readonly<Record<string, LockEntry>>;
}

/** `node_modules/a/node_modules/@s/b` → `node_modules/a`; `node_modules/a` → ``. */
function parentOf(path: string): string {
  const at = path.lastIndexOf('/node_modules/');
  return at < 0 ? '' : path.slice(0, at);
}

/** Where Node would find `name` from the package installed at `from`, in the lockfile's tree. */
function locate(lock: Lockfile, from: string, name: string): string | undefined {
  for (let base = from; ; base = parentOf(base)) {
    const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (lock.packages[candidate] !== undefined) return candidate;
    if (base === '') return undefined;
  }
}

/**
 * Writes `package.json` and `package-lock.json` of a project in `dir` that depends on the packed
 * `tarball` and on `tools` (names of the repository's own dev dependencies, e.g. `tsx`, `openai`),
 * pinned to the versions and integrities of the repository's lockfile. `npm ci --offline` then
 * installs it from npm's cache alone: the cache holds every tarball `npm ci` fetched for the
 * repository, though not the registry's metadata a plain `npm install` would need.
 */
export function writeOfflineProject(options: {
  readonly dir: string;
  readonly repositoryLockfile: string;
  readonly tarball: string;
  readonly tools: readonly string[];
  readonly type: 'module' | 'commonjs';
  readonly packageJson: { readonly name: string; readonly version: string } & Readonly<
    Record<string, unknown>
  >;
}): void {
  const lock = JSON.parse(readFileSync(options.repositoryLockfile, 'utf8')) as Lockfile;
  const { packageJson: pkg } = options;
  const spec = `file:${basename(options.tarball)}`;
  const keymesh: LockEntry = {
    version: pkg.version,
    resolved: spec,
    integrity: `sha512-${createHash('sha512').update(readFileSync(options.tarball)).digest('base64')}`,
    ...pick(pkg, ['license', 'dependencies', 'bin', 'engines', 'peerDependencies', 'peerDependenciesMeta']),
  };
  const packages: Record<string, LockEntry> = { 'node_modules/keymesh': keymesh };
  const rootDependencies: Record<string, string> = { keymesh: spec };
  const queue: Array<readonly [string, LockEntry]> = [['node_modules/keymesh', keymesh]];
  for (const tool of options.tools) {
    const path = `node_modules/${tool}`;
    const entry = lock.packages[path];
    if (entry?.version === undefined) throw new Error(`${tool} is not in the repository's lockfile`);
    rootDependencies[tool] = entry.version;
    queue.push([path, entry]);
  }
  for (const [path, entry] of queue) {
    if (path !== 'node_modules/keymesh') packages[path] = withoutFlags(path, entry);
    const optionalPeers = entry.peerDependenciesMeta ?? {};
    const needs = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter((name) => optionalPeers[name]?.optional !== true),
    ];
    for (const name of needs) {
      const found = locate(lock, path, name);
      // An optional dependency for another platform may be absent; anything else must be there.
      if (found === undefined) {
        if (entry.optionalDependencies?.[name] !== undefined) continue;
        throw new Error(`${name}, needed by ${path}, is not in the repository's lockfile`);
      }
      const dependency = lock.packages[found];
      if (packages[found] === undefined && dependency !== undefined && !queue.some(([p]) => p === found)) {
        queue.push([found, dependency]);
      }
    }
  }
  const manifest = {
    name: `keymesh-package-test-${options.type}`,
    version: '1.0.0',
    private: true,
    ...(options.type === 'module' ? { type: 'module' } : {}),
    dependencies: rootDependencies,
  };
  writeFileSync(join(options.dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const lockfile = {
    name: manifest.name,
    version: manifest.version,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: manifest.name, version: manifest.version, dependencies: rootDependencies },
      ...packages,
    },
  };
  writeFileSync(join(options.dir, 'package-lock.json'), `${JSON.stringify(lockfile, null, 2)}\n`);
}

function pick(source: Readonly<Record<string, unknown>>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(fields.filter((field) => source[field] !== undefined).map((f) => [f, source[f]]));
}

/**
 * A lockfile entry without the repository's dev/peer markings (here everything is a dependency),
 * and with the registry address of its tarball, which npm finds in its cache by the integrity.
 */
function withoutFlags(path: string, entry: LockEntry): LockEntry {
  const { dev: _dev, devOptional: _devOptional, peer: _peer, ...rest } = entry;
  const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
  const file = `${name.slice(name.indexOf('/') + 1)}-${entry.version}.tgz`;
  return { resolved: `https://registry.npmjs.org/${name}/-/${file}`, ...rest };
}
