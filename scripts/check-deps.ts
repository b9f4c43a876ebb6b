/**
 * Keeps dependencies pointing one way (run by `npm run lint`):
 *   common ← message ← store;  common ← protocol ← remoting ← {namesrv, broker, client};
 *   message ← {broker, client};  store ← broker;
 *   client ← {cli, console}.
 * A module may import from the folders its row allows, and from another folder only through that
 * folder's entry file (`index.ts`), never its internals — except `common`, a set of small
 * independent modules each public on its own. Prints each violation and exits 1.
 */
import fs from 'node:fs';
import path from 'node:path';

const allowed: Record<string, string[]> = {
  common: [],
  message: ['common'],
  store: ['common', 'message'],
  protocol: ['common'],
  remoting: ['common', 'protocol'],
  namesrv: ['common', 'protocol', 'remoting'],
  broker: ['common', 'message', 'protocol', 'remoting', 'store', 'namesrv'],
  client: ['common', 'message', 'protocol', 'remoting'],
  cli: ['common', 'message', 'protocol', 'remoting', 'client', 'store', 'namesrv', 'broker'],
};

const root = path.resolve(process.argv[2] ?? 'src');
const problems: string[] = [];

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

for (const file of walk(root)) {
  const from = path.relative(root, file).split(path.sep)[0]!;
  const text = fs.readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    const target = path.resolve(path.dirname(file), m[1]!);
    const rel = path.relative(root, target).split(path.sep);
    const to = rel[0]!;
    if (to === from || rel.length < 2) continue;
    if (!(allowed[from] ?? []).includes(to)) {
      problems.push(`${path.relative(root, file)}: ${from} may not import ${to} (${m[1]})`);
    } else if (to !== 'common' && !(rel.length === 2 && rel[1] === 'index.js')) {
      problems.push(`${path.relative(root, file)}: import ${to} through ${to}/index.js, not ${m[1]}`);
    }
  }
}

if (problems.length > 0) {
  console.error(`dependency rule violations:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`dependency rules hold for ${root}`);
