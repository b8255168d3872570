/**
 * The package as a user gets it: `npm pack`, installed into empty projects in the system's
 * temporary folder (ESM and CommonJS) with `npm ci --offline` from npm's cache, then every example
 * and README snippet run from there, and the CLI through `npx`. No repository file is in reach:
 * the projects resolve `keymesh` and every other module from their own node_modules.
 */
import { cp, mkdir, mkdtemp, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import tsupConfig from '../../tsup.config.js';
import { EXAMPLES, FAKE_KEY, freePort, inBatches, runProcess, runTypeScript } from '../examples/support.js';
import { writeOfflineProject } from './offline-project.js';

const root = resolve(import.meta.dirname, '../..');
/** The modules the examples and snippets use besides keymesh, at the repository's versions. */
const TOOLS = [
  'tsx',
  'typescript',
  '@types/node',
  'openai',
  '@anthropic-ai/sdk',
  'ai',
  '@ai-sdk/openai',
  '@statelyai/inspect',
  '@opentelemetry/api',
];

/** A user's strict tsconfig.json, resolving modules as Node does (package "exports", types conditions). */
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noUncheckedIndexedAccess: true,
    types: ['node'],
    skipLibCheck: true,
    noEmit: true,
  },
};

/** The environment of a user's shell: none of npm's variables of the repository's own scripts. */
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith('npm_') && name !== 'INIT_CWD'),
);

let work = '';
const project = { esm: '', cjs: '' };

async function must(run: Promise<{ code: number | null; stdout: string; stderr: string }>, what: string) {
  const done = await run;
  if (done.code !== 0) throw new Error(`${what} exited ${done.code}:\n${done.stdout}\n${done.stderr}`);
  return done;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keymesh-package-'));
  // The package as `npm run build` makes it, staged apart so that the repository's dist/ is left alone.
  const staging = join(work, 'staging');
  await mkdir(staging);
  for (const file of ['package.json', 'README.md', 'LICENSE'])
    await cp(join(root, file), join(staging, file));
  const config = Array.isArray(tsupConfig) ? tsupConfig[0] : tsupConfig;
  await build({ ...config, outDir: join(staging, 'dist'), silent: true });
  await must(runProcess('npm', ['pack', '--pack-destination', work], { cwd: staging, env }), 'npm pack');
  const tarball = join(work, `keymesh-${packageJson.version}.tgz`);

  for (const type of ['module', 'commonjs'] as const) {
    const dir = join(work, type === 'module' ? 'esm' : 'cjs');
    await mkdir(dir);
    await cp(tarball, join(dir, `keymesh-${packageJson.version}.tgz`));
    writeOfflineProject({
      dir,
      repositoryLockfile: join(root, 'package-lock.json'),
      tarball: join(dir, `keymesh-${packageJson.version}.tgz`),
      tools: TOOLS,
      type,
      packageJson,
    });
    await must(
      runProcess('npm', ['ci', '--offline', '--no-audit', '--no-fund'], {
        cwd: dir,
        env,
        timeoutMs: 300_000,
      }),
      `npm ci (${type})`,
    );
    if (type === 'module') project.esm = dir;
    else project.cjs = dir;
  }
  // The user's copies: every example, and every README snippet.
  await cp(join(root, 'examples'), project.esm, { recursive: true });
  await cp(join(root, 'examples/readme/commonjs.ts'), join(project.cjs, 'commonjs.ts'));
  for (const dir of [project.esm, project.cjs]) {
    await writeFile(join(dir, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
  }
}, 600_000);

afterAll(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

describe('the packed package, installed into an empty project', { timeout: 300_000 }, () => {
  it('resolves keymesh and keymesh/sim to the installed copy, in ESM and CommonJS', async () => {
    for (const dir of [project.esm, project.cjs]) {
      const installed = await realpath(join(dir, 'node_modules', 'keymesh'));
      expect(installed).toBe(join(await realpath(dir), 'node_modules', 'keymesh'));
      const resolved = await must(
        runProcess(
          process.execPath,
          ['-e', "console.log(require.resolve('keymesh'), require.resolve('keymesh/sim'))"],
          { cwd: dir, env },
        ),
        'require.resolve',
      );
      expect(resolved.stdout.trim()).toBe(`${installed}/dist/index.cjs ${installed}/dist/sim.cjs`);
    }
    expect((await readdir(join(project.esm, 'node_modules'))).includes('better-sqlite3')).toBe(false);
  });

  it('type-checks every example and snippet against the installed types, strict, in ESM and CommonJS', async () => {
    const tsc = ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'];
    const [esm, cjs] = await Promise.all([
      runProcess(process.execPath, tsc, { cwd: project.esm, env }),
      runProcess(process.execPath, tsc, { cwd: project.cjs, env }),
    ]);
    expect(esm.stdout).toBe('');
    expect(esm.code).toBe(0);
    expect(cjs.stdout).toBe('');
    expect(cjs.code).toBe(0);
  });

  it('runs every example', async () => {
    const runs = await inBatches(
      EXAMPLES.map((example) => async () => ({
        example,
        run: await runTypeScript(example.file, { cwd: project.esm, env }),
      })),
      3,
    );
    for (const { example, run } of runs) {
      expect({ file: example.file, code: run.code, stderr: run.stderr }).toEqual({
        file: example.file,
        code: 0,
        stderr: '',
      });
      for (const line of example.lines) expect(run.stdout).toMatch(new RegExp(line.source, 'm'));
      expect(run.stdout).not.toMatch(FAKE_KEY);
    }
  });

  it('runs every README snippet, and the CommonJS one in a CommonJS project', async () => {
    const snippets = (await readdir(join(project.esm, 'readme'))).filter((file) => file.endsWith('.ts'));
    expect(snippets).toContain('use.ts');
    const snippetEnv = { ...env, INSPECTOR_PORT: String(await freePort()), METRICS_PORT: '0' };
    const runs = await inBatches(
      [
        ...snippets.map(
          (file) => () => runTypeScript(`readme/${file}`, { cwd: project.esm, env: snippetEnv }),
        ),
        () => runTypeScript('commonjs.ts', { cwd: project.cjs, env }),
      ],
      3,
    );
    const names = [...snippets.map((file) => `esm: ${file}`), 'cjs: commonjs.ts'];
    runs.forEach((run, i) => {
      expect({ snippet: names[i], code: run.code, stderr: run.stderr }).toEqual({
        snippet: names[i],
        code: 0,
        stderr: '',
      });
      expect(run.stdout).not.toMatch(FAKE_KEY);
    });
  });

  it('runs npx keymesh demo --speed 10, then npx keymesh status reads what it saved', async () => {
    const demo = await runProcess('npx', ['keymesh', 'demo', '--speed', '10'], { cwd: project.esm, env });
    expect(demo.stderr).toBe('');
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/^Done in [\d.]+ m?s: 400 of 400 requests served, 0 failed$/m);
    // Without better-sqlite3, the default store is the JSON file, for the demo and status alike.
    expect(demo.stdout).toContain('state saved to json:.keymesh/demo.json');
    expect(demo.stdout).toContain('run `npx keymesh demo` again');
    expect(demo.stdout).toContain('read it with `npx keymesh status`');
    expect(demo.stdout).not.toContain('npm run');

    const status = await runProcess('npx', ['keymesh', 'status', '--json'], { cwd: project.esm, env });
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    const saved = JSON.parse(status.stdout) as { keys: Array<{ label: string; successes: number }> };
    expect(saved.keys.map((k) => k.label)).toEqual(['alpha', 'bravo', 'charlie', 'delta', 'echo']);
    expect(saved.keys.reduce((sum, k) => sum + k.successes, 0)).toBe(400);
    const table = await runProcess('npx', ['keymesh', 'status'], { cwd: project.esm, env });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/\bdelta\s+exhausted\s+revoked\b/);
  });
});
