import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

/**
 * The page's Content-Security-Policy. Scripts and styles only from the viewer itself (no inline code, no
 * eval), connections only back to it, nothing framed, no forms, and Trusted Types with no policy: the browser
 * itself refuses any assignment of a string to `innerHTML` and its kin, so event content can only ever reach
 * the page as text.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

/** Headers sent with every response, refusals included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  // The token is in the page's URL: never send it to anyone in a Referer header.
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cache-Control": "no-store",
};

/** A new per-run token: 24 random bytes, URL-safe base64 (32 characters). */
export function createToken(): string {
  return randomBytes(24).toString("base64url");
}

/**
 * True when the request carries `token`, as `?token=` or as `Authorization: Bearer <token>` (the scheme in any
 * case, as HTTP auth schemes are case-insensitive). Either one matching is enough: an empty or stale `?token=`
 * left on a URL must not hide a valid header. The comparison takes the same time wherever the first wrong
 * character is.
 */
export function hasToken(request: IncomingMessage, url: URL, token: string): boolean {
  const header = request.headers.authorization;
  const bearer = typeof header === "string" ? /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1] : undefined;
  const expected = Buffer.from(token, "utf8");
  const matches = (given: string | null | undefined): boolean => {
    if (given === null || given === undefined || given === "") return false;
    const a = Buffer.from(given, "utf8");
    return a.length === expected.length && timingSafeEqual(a, expected);
  };
  return matches(url.searchParams.get("token")) || matches(bearer);
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/** True for an address that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare === "localhost") return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  return bare === "::1";
}

/**
 * A page from another site may resolve its own host name to 127.0.0.1 (DNS rebinding) and talk to a loopback
 * server as if same-origin. Such requests carry the foreign name in `Host`: a server bound to loopback answers
 * only requests addressed to a loopback name.
 */
export function hostAllowed(request: IncomingMessage, boundToLoopback: boolean): boolean {
  if (!boundToLoopback) return true;
  const host = request.headers.host;
  if (host === undefined) return false;
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
  return LOOPBACK_NAMES.has(name.toLowerCase());
}
