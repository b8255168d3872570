import { type ExecFileSyncOptionsWithStringEncoding, execFileSync } from 'node:child_process';
import os from 'node:os';

const GIT: ExecFileSyncOptionsWithStringEncoding = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] };

/** The commit measured, and whether the working tree had changes on top of it. */
export function commitOf(): { readonly commit: string; readonly dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], GIT).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    });
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return { commit: 'unknown (not a git checkout)', dirty: false };
  }
}

/** What the figures were measured on. */
export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.release()} (${os.platform()} ${os.arch()})`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 1_073_741_824) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
  };
}
