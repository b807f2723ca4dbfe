import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isIPv4 } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Maximum accepted length of a callback URL. */
export const MAX_CALLBACK_URL_LENGTH = 2048;

/** `code` of the error raised by {@link guardedLookup} when a name resolves to a non-public address. */
export const CALLBACK_BLOCKED_CODE = 'ECALLBACKBLOCKED';

export type CallbackUrlErrorCode = 'invalid_callback_url' | 'callback_url_not_allowed';

export class CallbackUrlError extends Error {
  readonly code: CallbackUrlErrorCode;

  constructor(code: CallbackUrlErrorCode, message: string) {
    super(message);
    this.name = 'CallbackUrlError';
    this.code = code;
  }
}

/** Error passed to the connect callback when every/any resolved address is not public. */
export class CallbackBlockedError extends Error {
  readonly code = CALLBACK_BLOCKED_CODE;
  readonly hostname: string;
  readonly address: string;

  constructor(hostname: string, address: string) {
    super(`callback target ${hostname} resolves to non-public address ${address}`);
    this.name = 'CallbackBlockedError';
    this.hostname = hostname;
    this.address = address;
  }
}

// Global unicast space (RFC 4291 §2.4 / IANA): everything outside 2000::/3 is special in some way,
// including the deprecated IPv4-compatible ::a.b.c.d form that ipaddr.js reports as plain 'unicast'.
const IPV6_GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');

/**
 * True only for publicly routable unicast addresses (ipaddr.js range `unicast`). Loopback, private
 * (RFC 1918), link-local, unique-local, unspecified, multicast, broadcast, carrier-grade NAT, reserved /
 * documentation / benchmarking ranges, NAT64, 6to4, Teredo and IPv4-mapped IPv6 forms of any non-public
 * IPv4 address are all rejected, as is anything that is not an IP address. Accepts `[v6]` with brackets.
 */
export function isPublicAddress(ip: string): boolean {
  let text = ip.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  if (!ipaddr.isValid(text)) return false;
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(text);
  } catch {
    return false;
  }
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return isPublicIPv4(v6.toIPv4Address());
    return v6.range() === 'unicast' && v6.match(IPV6_GLOBAL_UNICAST);
  }
  return isPublicIPv4(addr as ipaddr.IPv4);
}

function isPublicIPv4(addr: ipaddr.IPv4): boolean {
  return addr.range() === 'unicast';
}

function isLocalhostName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.+$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

/** The URL host as an IP literal without brackets, or null when the host is a name. */
export function ipLiteralHost(url: URL): string | null {
  const host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) return host.slice(1, -1);
  // WHATWG URL parsing normalises decimal / hex / octal / shortened IPv4 forms to dotted quads.
  return isIPv4(host) ? host : null;
}

/**
 * Syntax-only validation of a callback URL (no target policy): http/https, a host, no credentials,
 * at most 2048 characters. Throws `CallbackUrlError('invalid_callback_url')`.
 */
export function parseCallbackUrl(url: string): URL {
  if (typeof url !== 'string' || url.length === 0) {
    throw new CallbackUrlError('invalid_callback_url', 'callback URL is empty');
  }
  if (url.length > MAX_CALLBACK_URL_LENGTH) {
    throw new CallbackUrlError(
      'invalid_callback_url',
      `callback URL is longer than ${MAX_CALLBACK_URL_LENGTH} characters`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CallbackUrlError('invalid_callback_url', 'callback URL is not a valid absolute URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CallbackUrlError('invalid_callback_url', 'callback URL must use http or https');
  }
  if (parsed.hostname === '') {
    throw new CallbackUrlError('invalid_callback_url', 'callback URL has no host');
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new CallbackUrlError(
      'invalid_callback_url',
      'callback URL must not contain a username or password',
    );
  }
  return parsed;
}

/**
 * Validation done when a callback URL is accepted (message submission, tenant settings). Syntax as in
 * {@link parseCallbackUrl}; in addition IP-literal hosts that are not public unicast addresses and
 * `localhost` / `*.localhost` are rejected with `callback_url_not_allowed` unless `allowPrivateTargets`.
 * Names are not resolved here: {@link guardedLookup} checks the resolved addresses at connect time.
 */
export function checkCallbackUrl(url: string, opts: { allowPrivateTargets: boolean }): URL {
  const parsed = parseCallbackUrl(url);
  if (opts.allowPrivateTargets) return parsed;
  const literal = ipLiteralHost(parsed);
  if (literal !== null) {
    if (!isPublicAddress(literal)) {
      throw new CallbackUrlError(
        'callback_url_not_allowed',
        `callback URL points at a non-public address (${literal})`,
      );
    }
  } else if (isLocalhostName(parsed.hostname)) {
    throw new CallbackUrlError('callback_url_not_allowed', 'callback URL points at localhost');
  }
  return parsed;
}

/** The `dns.lookup` form used by {@link guardedLookup} to resolve names (injectable for tests). */
export type LookupAllResolver = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

const defaultResolver: LookupAllResolver = (hostname, options, callback) => {
  dns.lookup(hostname, options, callback);
};

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for `http.request({ lookup })` / `net.connect({ lookup })`. It resolves every address of
 * the name and, unless `allowPrivateTargets`, fails with a {@link CallbackBlockedError}
 * (`code: 'ECALLBACKBLOCKED'`) if ANY of them is not public — the check happens at connect time on the
 * addresses actually used, which defeats names pointing (or re-bound) at internal addresses.
 *
 * Supports both calling conventions Node uses: `{ all: true }` (autoSelectFamily, Node ≥ 20) gets the
 * address list; otherwise the first address is returned as `(err, address, family)`. Also accepts the
 * `dns.lookup(hostname[, family | options], callback)` shapes.
 */
export function guardedLookup(
  allowPrivateTargets: boolean,
  resolver: LookupAllResolver = defaultResolver,
): LookupFunction {
  const lookup = (hostname: string, optionsOrCallback: unknown, maybeCallback?: unknown): void => {
    let options: dns.LookupOptions;
    let callback: LookupCallback;
    if (typeof optionsOrCallback === 'function') {
      options = {};
      callback = optionsOrCallback as LookupCallback;
    } else {
      options =
        typeof optionsOrCallback === 'number'
          ? { family: optionsOrCallback }
          : { ...((optionsOrCallback ?? {}) as dns.LookupOptions) };
      callback = maybeCallback as LookupCallback;
    }
    const wantAll = options.all === true;

    resolver(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, wantAll ? [] : '', undefined);
        return;
      }
      if (!Array.isArray(addresses) || addresses.length === 0) {
        const notFound: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        notFound.code = 'ENOTFOUND';
        callback(notFound, wantAll ? [] : '', undefined);
        return;
      }
      if (!allowPrivateTargets) {
        const blocked = addresses.find((a) => !isPublicAddress(a.address));
        if (blocked) {
          callback(new CallbackBlockedError(hostname, blocked.address), wantAll ? [] : '', undefined);
          return;
        }
      }
      if (wantAll) {
        callback(null, addresses);
      } else {
        const first = addresses[0]!;
        callback(null, first.address, first.family);
      }
    });
  };
  return lookup as LookupFunction;
}
