// RFC 6901: "~" and "/" inside a key must be escaped, and annotation keys always contain "/".
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}
