/**
 * A compiled glob for identities and method paths: `*` matches any run of characters except `/`,
 * so it stands for one path segment (`shop.v1.Cart/*` is every method of one service); `**`
 * matches anything, `/` included (`spiffe://prod.example/**` is a whole trust domain). Every
 * other character matches itself.
 */
export type Glob = (value: string) => boolean;

/** Compiles `pattern`; a pattern without `*` is compared as a plain string. */
export function compileGlob(pattern: string): Glob {
  if (!pattern.includes('*')) return (value) => value === pattern;
  const source = pattern
    .split(/(\*\*+|\*)/)
    .map((part) => {
      if (part.startsWith('**')) return '.*';
      if (part === '*') return '[^/]*';
      return part.replace(/[\\^$.|?+()[\]{}]/g, '\\$&');
    })
    .join('');
  const regex = new RegExp(`^${source}$`, 's');
  return (value) => regex.test(value);
}
