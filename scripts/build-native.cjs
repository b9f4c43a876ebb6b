/**
 * Builds the native CRC-32 addon (native/crc32.c → build/Release/tsmq_native.node) with npm's
 * bundled node-gyp. Run by npm as the package's `install` script (before tsc, hence plain JS) and
 * by `npm run build:native`.
 *
 * The addon is an optimisation (src/common/native.ts falls back to JavaScript/zlib without it), so
 * a failed build must never fail an install: it prints one warning line, keeps node-gyp's output
 * in build/native-build.log, and exits 0. With --strict (build:native) a failure exits 1.
 * TSMQ_NATIVE=0 skips the build.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const strict = process.argv.includes('--strict');
const addon = path.join(root, 'build', 'Release', 'tsmq_native.node');

function fail(reason) {
  console.warn(`native CRC addon not built: ${reason}; tsmq uses the slower JavaScript/zlib path`);
  process.exit(strict ? 1 : 0);
}

/** The command that runs node-gyp: npm's bundled copy when npm tells us where it is. */
function nodeGypCommand() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) {
    candidates.push(
      path.join(
        path.dirname(process.env.npm_execpath),
        '..',
        'node_modules',
        'node-gyp',
        'bin',
        'node-gyp.js',
      ),
    );
  }
  for (const c of candidates) {
    if (fs.existsSync(c)) return { file: process.execPath, args: [c] };
  }
  return { file: process.platform === 'win32' ? 'npx.cmd' : 'npx', args: ['--no-install', 'node-gyp'] };
}

/** The line of node-gyp's output that best says what went wrong. */
function reasonOf(output, status) {
  const lines = output.split('\n').map((l) => l.trim());
  const hit =
    lines.find(
      (l) =>
        /\berror\b|not found|No such file|ENOENT|EACCES/i.test(l) &&
        !/^gyp ERR! (cwd|node -v|node-gyp -v|System|command|not ok)/.test(l),
    ) ?? lines.find((l) => l.startsWith('gyp ERR!'));
  const why = hit ? hit.replace(/^gyp ERR! (stack )?/, '') : `node-gyp exited with status ${status}`;
  return why.length > 200 ? `${why.slice(0, 197)}...` : why;
}

function main() {
  if (process.env.TSMQ_NATIVE === '0') fail('disabled by TSMQ_NATIVE=0');
  const cmd = nodeGypCommand();
  const args = [...cmd.args, 'rebuild'];
  // Build against the headers installed with this Node when they are there, so that node-gyp
  // never downloads them (a machine without network, or one that drops it, would wait).
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  const r = spawnSync(cmd.file, args, {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 5 * 60 * 1000,
    // Only npx.cmd needs a shell (Windows); node itself is run directly, so no path needs quoting.
    shell: cmd.file.endsWith('.cmd'),
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const log = path.join(root, 'build', 'native-build.log');
  try {
    fs.mkdirSync(path.dirname(log), { recursive: true });
    fs.writeFileSync(log, output);
  } catch {
    // The log is a convenience.
  }
  if (r.error) fail(`cannot run node-gyp (${r.error.message})`);
  if (r.status !== 0) fail(`${reasonOf(output, r.status)} (see build/native-build.log)`);
  try {
    const native = require(addon);
    if (native.crc32(Buffer.from('123456789'), 0, 9, 0) !== 0xcbf43926)
      throw new Error('wrong CRC of "123456789"');
    console.log(
      `tsmq: native CRC addon built (${native.simd ? 'pclmul' : 'table'}): ${path.relative(root, addon)}`,
    );
  } catch (e) {
    try {
      fs.rmSync(addon, { force: true });
    } catch {
      // Leave it; the loader will reject it too.
    }
    fail(`the built addon does not work (${e instanceof Error ? e.message : String(e)})`);
  }
}

try {
  main();
} catch (e) {
  fail(`unexpected error (${e instanceof Error ? e.message : String(e)})`);
}
