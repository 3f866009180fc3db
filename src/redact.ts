/**
 * Secrets out of text that people or other programs see: the start-up banner, the log, /health,
 * `status`, `doctor`, error messages. A backend URL may carry credentials (`http://user:pass@host`)
 * or a key in its query (`?key=…`): they are replaced by `***`, the rest of the URL stays readable.
 * Works on any text, so a URL inside a message or a JSON log line is redacted too.
 */

/**
 * A URL's user information: from `scheme://` to the last `@` before the authority ends. The run
 * stops at what ends an authority (`/ ? #`), at white space, and at the quotes, brackets and
 * backslashes that end a string around it.
 */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'`<>\\]*@/gi;

/** Query parameters that carry keys by their name: `?key=`, `&api_key=`, `access_token=`, `sig=`… */
const SECRET_PARAM =
  /([?&](?:api[-_]?key|key|access[-_]?token|token|auth|secret|password|passwd|sig|signature)=)[^&#\s"'`<>\\]+/gi;

/** `text` with every URL credential replaced by `***`. Returns `text` itself when there is none. */
export function redact(text: string): string {
  if (!text.includes("://") && !text.includes("=")) return text;
  return text.replace(USERINFO, "$1***@").replace(SECRET_PARAM, "$1***");
}
