// Downloads one file over HTTP(S): follows a bounded number of redirects (never https -> http),
// honors HTTPS_PROXY / HTTP_PROXY / NO_PROXY (and npm's proxy settings), streams into a temporary
// file next to the destination while hashing, rejects a truncated body or a wrong sha256, and only
// then renames the file into place.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';

import { VideoMAEError } from '../errors';

export interface DownloadOptions {
  /** Expected sha256, hex. A mismatch deletes the file and rejects. */
  sha256?: string;
  /** Default 5. */
  maxRedirects?: number;
  /** Rejects when the connection is idle this long. Default 60 s. */
  idleTimeoutMs?: number;
  /** Called once the response starts, with its Content-Length when it has one. */
  onStart?: (total: number | undefined, url: string) => void;
  /** Called as bytes arrive, with the count so far. */
  onProgress?: (received: number) => void;
}

export interface DownloadResult {
  file: string;
  bytes: number;
  sha256: string;
  /** The URL that served the body, after redirects. */
  url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function fail(message: string, cause?: unknown): VideoMAEError {
  return new VideoMAEError('VMAE_SETUP_FAILED', message, cause === undefined ? undefined : { cause });
}

/** Requests whose connection went idle too long, so a cut-off body can say why. */
const stalled = new WeakSet<http.ClientRequest>();

/** Sends a GET for `url`, through the proxy the environment names for it, if any. */
function get(url: URL, idleTimeoutMs: number): Promise<http.IncomingMessage> {
  const headers: http.OutgoingHttpHeaders = { 'user-agent': 'videomae-node', 'accept-encoding': 'identity' };
  // A URL object, so proxy-from-env does not call the deprecated url.parse().
  const proxy = getProxyForUrl(url as unknown as Parameters<typeof getProxyForUrl>[0]) || undefined;
  let req: http.ClientRequest;
  if (proxy && url.protocol === 'http:' && new URL(proxy).protocol === 'http:') {
    // Plain HTTP through a proxy: send the absolute URL to the proxy (RFC 9112 absolute-form).
    const p = new URL(proxy);
    if (p.username) {
      const auth = `${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`;
      headers['proxy-authorization'] = `Basic ${Buffer.from(auth).toString('base64')}`;
    }
    req = http.request({ host: p.hostname, port: p.port || 80, path: url.href, headers: { ...headers, host: url.host } });
  } else {
    const agent = proxy ? new HttpsProxyAgent(proxy) : undefined;
    req = (url.protocol === 'https:' ? https : http).request(url, { headers, agent });
  }
  return new Promise((resolve, reject) => {
    req.setTimeout(idleTimeoutMs, () => {
      stalled.add(req);
      req.destroy(new Error(`no data for ${idleTimeoutMs / 1000} s`));
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
}

/** GETs `url`, following redirects; resolves with a 200 response and the URL that served it. */
async function open(url: string, maxRedirects: number, idleTimeoutMs: number): Promise<{ res: http.IncomingMessage; current: URL }> {
  let current = new URL(url);
  let res: http.IncomingMessage;
  for (let hops = 0; ; hops++) {
    if (current.protocol !== 'https:' && current.protocol !== 'http:') throw fail(`Cannot download ${current.href}: only http and https URLs are supported`);
    try {
      res = await get(current, idleTimeoutMs);
    } catch (err) {
      throw fail(`Could not download ${current.href}: ${(err as Error).message}`, err);
    }
    const status = res.statusCode ?? 0;
    if (!REDIRECTS.has(status)) break;
    res.resume();
    const location = res.headers.location;
    if (!location) throw fail(`HTTP ${status} without a Location header from ${current.href}`);
    if (hops >= maxRedirects) throw fail(`Too many redirects (more than ${maxRedirects}) starting at ${url}; the server or mirror redirects in a loop`);
    const next = new URL(location, current);
    if (current.protocol === 'https:' && next.protocol !== 'https:') {
      throw fail(`Refusing a redirect from ${current.href} to the insecure ${next.href}`);
    }
    current = next;
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw fail(`HTTP ${res.statusCode}${res.statusMessage ? ` ${res.statusMessage}` : ''} for ${current.href}`);
  }
  return { res, current };
}

/** The body of `url` as text (a package index page, capped at 16 MB). Async; rejects with VMAE_SETUP_FAILED. */
export async function fetchText(url: string, options: Pick<DownloadOptions, 'maxRedirects' | 'idleTimeoutMs'> = {}): Promise<{ text: string; url: string }> {
  const { res, current } = await open(url, options.maxRedirects ?? 5, options.idleTimeoutMs ?? 60_000);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > 16 << 20) throw new Error('over 16 MB');
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    res.destroy();
    throw fail(`Could not read ${current.href}: ${(err as Error).message}`, err);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), url: current.href };
}

/** Downloads `url` to `dest` (replacing it). Async; rejects with VMAE_SETUP_FAILED. */
export async function download(url: string, dest: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const { res, current } = await open(url, options.maxRedirects ?? 5, idleTimeoutMs);

  const header = res.headers['content-length'];
  const total = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
  options.onStart?.(total, current.href);
  const hash = crypto.createHash('sha256');
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      received += chunk.length;
      options.onProgress?.(received);
      done(null, chunk);
    },
  });
  const temp = `${dest}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.partial`;
  const truncated = (): VideoMAEError =>
    fail(`Download of ${current.href} was truncated: received ${received} of ${total} bytes. Try again; the partial file was deleted.`);
  const stopped = (): VideoMAEError =>
    fail(`Download of ${current.href} stopped: no data for ${idleTimeoutMs / 1000} s after ${received} bytes. The server ` +
      'or the network hangs; try again later, or raise VIDEOMAE_DOWNLOAD_TIMEOUT (seconds). The partial file was deleted.');
  try {
    await pipeline(res, counter, fs.createWriteStream(temp, { flags: 'wx' }));
    if (total !== undefined && received !== total) throw stalled.has((res as unknown as { req: http.ClientRequest }).req) ? stopped() : truncated();
    const digest = hash.digest('hex');
    if (options.sha256 && digest !== options.sha256.toLowerCase()) {
      throw fail(
        `Checksum mismatch for ${current.href}: expected sha256 ${options.sha256.toLowerCase()}, got ${digest}. ` +
          'The file was deleted. If you use a mirror (VIDEOMAE_LIBTORCH_MIRROR), it serves a different archive.',
      );
    }
    await fs.promises.rename(temp, dest);
    return { file: dest, bytes: received, sha256: digest, url: current.href };
  } catch (err) {
    await fs.promises.rm(temp, { force: true });
    if (err instanceof VideoMAEError || (err as NodeJS.ErrnoException).code === 'ENOSPC') throw err;
    if (stalled.has((res as unknown as { req: http.ClientRequest }).req)) throw stopped();
    if (total !== undefined && received < total) throw truncated();
    throw fail(`Download of ${current.href} failed after ${received} bytes: ${(err as Error).message}`, err);
  }
}

/** The sha256 of a file, hex. Async. */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
