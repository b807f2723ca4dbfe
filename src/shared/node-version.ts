/**
 * Some dependencies (@fastify/static's content-disposition, fastify's light-my-request's cookie) are
 * ES modules that CommonJS code loads with require(). Node.js does that without a flag from 20.19
 * and 22.12 on; older versions fail at start with ERR_REQUIRE_ESM, half-way through (seen with
 * 20.18). Checked first, so the operator reads what to install instead.
 */
export function nodeVersionProblem(version: string): string | null {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  const supported = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23;
  return supported
    ? null
    : `Relais needs Node.js 20.19 or newer on 20.x, or 22.12 or newer (this is ${version})`;
}
