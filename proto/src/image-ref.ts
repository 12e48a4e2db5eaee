// Container image references, parsed the way Docker's distribution/reference package does
// (github.com/distribution/reference: ParseNormalizedNamed), so that the orchestrator rejects what
// a container runtime would reject and the agent compares repositories the way runtimes do.
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path-component [ "/" path-component ]*
//   domain     := host [ ":" port ]        host: DNS name, IPv4 or [IPv6]
//   path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*    separator: "." | "_" | "__" | "-"+
//   tag        := [\w][\w.-]{0,127}
//   digest     := algorithm ":" hex        (sha256: 64, sha384: 96, sha512: 128 lowercase hex)
//
// Normalization: a name without a domain lives on docker.io, and a single-component docker.io
// name lives under library/ — "nginx" is "docker.io/library/nginx".
import { MAX_IMAGE_LENGTH } from "./limits.js";

/** A parsed image reference. */
export interface ImageReference {
  /** Normalized repository, e.g. `docker.io/library/nginx`, `ghcr.io/owner/app`, `localhost:5000/app`. */
  repository: string;
  /** Tag, when given (`1.25`). */
  tag?: string;
  /** Digest, when given (`sha256:…`). */
  digest?: string;
}

export class InvalidImageReferenceError extends Error {
  override readonly name = "InvalidImageReferenceError";
}

const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";
/** distribution/reference NameTotalLengthMax. */
const MAX_NAME_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST_ALGORITHM = /^[A-Za-z][A-Za-z0-9]*(?:[+._-][A-Za-z][A-Za-z0-9]*)*$/;
const HEX_64 = /^[a-f0-9]{64}$/;
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Shows a user-supplied value in a message: quoted, escaped, and cut if very long. */
function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

/**
 * Parses and normalizes an image reference; throws InvalidImageReferenceError saying what is wrong.
 */
export function parseImageReference(s: string): ImageReference {
  const fail = (what: string): never => {
    throw new InvalidImageReferenceError(`invalid image reference ${show(s)}: ${what}`);
  };
  if (typeof s !== "string" || s.length === 0) {
    throw new InvalidImageReferenceError("invalid image reference: it is empty");
  }
  if (s.length > MAX_IMAGE_LENGTH) {
    throw new InvalidImageReferenceError(
      `invalid image reference ${show(s)}: it is ${s.length} characters long; at most ${MAX_IMAGE_LENGTH} are allowed`,
    );
  }
  if (/\s/.test(s)) fail("it contains whitespace");

  // Digest: everything after the first "@".
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(digest, fail);
  }

  // Tag: after the last ":" that follows the last "/" (a ":" before it belongs to a registry port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon !== -1 && colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag.length === 0) fail('the tag after ":" is empty');
    if (tag.length > 128) fail(`tag ${show(tag)} is ${tag.length} characters long; at most 128 are allowed`);
    if (!TAG.test(tag)) {
      fail(`tag ${show(tag)} must consist of letters, digits, '_', '.' and '-', and must not start with '.' or '-'`);
    }
  }

  const name = rest;
  if (name.length === 0) fail("the repository name is empty");
  if (name.length > MAX_NAME_LENGTH) {
    fail(`the repository name is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`);
  }

  // Domain (as distribution/reference splitDockerDomain): the first component is a registry host
  // when it contains "." or ":", is "localhost", or has upper-case letters.
  let domain = DEFAULT_DOMAIN;
  let path = name;
  const slash = name.indexOf("/");
  if (slash !== -1) {
    const first = name.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first.toLowerCase() !== first) {
      domain = first;
      path = name.slice(slash + 1);
      validateDomain(domain, fail);
    }
  }
  if (path.length === 0) fail("the repository path after the registry host is empty");
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path.toLowerCase() !== path) fail(`repository path ${show(path)} must be lowercase`);
  for (const component of path.split("/")) {
    if (component.length === 0) fail(`repository path ${show(path)} has an empty component ("//" or a trailing "/")`);
    if (!PATH_COMPONENT.test(component)) {
      fail(
        `repository path component ${show(component)} must consist of a-z and 0-9, separated by '.', '_', '__' or '-', and start and end with a letter or digit`,
      );
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) {
    if (HEX_64.test(path))
      fail("a repository name must not be a 64-character hexadecimal string (that is an image id)");
    path = OFFICIAL_REPO_PREFIX + path;
  }

  const ref: ImageReference = { repository: `${domain}/${path}` };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

function validateDomain(domain: string, fail: (what: string) => never): void {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith("[")) {
    const end = domain.indexOf("]");
    if (end === -1) fail(`registry host ${show(domain)} has an unclosed "["`);
    host = domain.slice(0, end + 1);
    const after = domain.slice(end + 1);
    if (after.length > 0) {
      if (!after.startsWith(":")) fail(`registry host ${show(domain)} is not a valid [IPv6]:port`);
      port = after.slice(1);
    }
    if (!IPV6_HOST.test(host)) fail(`registry host ${show(host)} is not a valid IPv6 address`);
  } else {
    const c = domain.indexOf(":");
    if (c !== -1) {
      host = domain.slice(0, c);
      port = domain.slice(c + 1);
    }
    if (host.length === 0) fail(`registry host is empty in ${show(domain)}`);
    for (const component of host.split(".")) {
      if (!DOMAIN_COMPONENT.test(component)) {
        fail(
          `registry host ${show(host)} must be a DNS name (letters, digits and '-' between dots), an IPv4 address or a bracketed IPv6 address`,
        );
      }
    }
  }
  if (port !== undefined && !PORT.test(port)) fail(`registry port ${show(port)} must be a number`);
  if (port !== undefined && Number(port) > 65535) fail(`registry port ${port} is above 65535`);
}

function validateDigest(digest: string, fail: (what: string) => never): void {
  const c = digest.indexOf(":");
  if (c === -1) fail(`digest ${show(digest)} must have the form algorithm:hex, e.g. sha256:<64 hex characters>`);
  const algorithm = digest.slice(0, c);
  const hex = digest.slice(c + 1);
  if (!DIGEST_ALGORITHM.test(algorithm)) fail(`digest algorithm ${show(algorithm)} is invalid`);
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (want === undefined) {
    fail(`digest algorithm ${show(algorithm)} is not supported (use sha256, sha384 or sha512)`);
  }
  if (hex.length !== want || !/^[a-f0-9]+$/.test(hex)) {
    fail(`a ${algorithm} digest needs exactly ${want} lowercase hexadecimal characters after "${algorithm}:"`);
  }
}

/**
 * True when both references name the same normalized repository ("nginx" and
 * "docker.io/library/nginx:1.25" do). A string that does not parse matches nothing.
 */
export function sameRepository(a: string | ImageReference, b: string | ImageReference): boolean {
  const ra = repositoryOf(a);
  const rb = repositoryOf(b);
  return ra !== undefined && ra === rb;
}

function repositoryOf(x: string | ImageReference): string | undefined {
  if (typeof x !== "string") return x.repository;
  try {
    return parseImageReference(x).repository;
  } catch {
    return undefined;
  }
}
