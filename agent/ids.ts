// Docker-shaped object ids (networks, services): 25 characters of base 36.
import { randomBytes } from 'node:crypto';

export function base36Id(len = 25): string {
  const b = randomBytes(len);
  let s = '';
  for (let i = 0; i < len; i++) s += (b[i] % 36).toString(36);
  return s;
}
