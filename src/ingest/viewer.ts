import type { FastifyRequest } from "fastify";
import type { RequestFacts } from "../traffic/classify.ts";
import { isPrefetch } from "../traffic/prefetch.ts";

/**
 * What an ingest request tells of its viewer (src/traffic/classify.ts). A request carrying Origin or
 * Sec-Fetch-Site was sent by a page (a fetch, a beacon; browsers add them and a page cannot remove them), so its
 * own headers describe the viewer; so do the pixel's and the click's, always: an `<img>` is a browser's, and so is
 * the navigation a click on a link makes. Sec-Fetch-Mode alone is
 * not a page's: Node's fetch sends it too, and browsers send Sec-Fetch-Site with it. Any other request comes from a server
 * reporting for viewers, whose own User-Agent and address say nothing of them. `request.ip` is the socket's peer,
 * or what X-Forwarded-For says through the proxies of TRUST_PROXY only.
 */
export function requestFacts(request: FastifyRequest, route: "post" | "pixel" | "click"): RequestFacts {
  const { headers } = request;
  const pageSignals = headers.origin !== undefined || headers["sec-fetch-site"] !== undefined;
  const fromViewer = pageSignals || route !== "post";
  return {
    fromViewer,
    pageSignals,
    userAgent: fromViewer ? headers["user-agent"] : undefined,
    ip: fromViewer ? request.ip : undefined,
    prefetch: fromViewer && isPrefetch(headers),
    browserKey: request.apiKey?.browser === true,
  };
}
