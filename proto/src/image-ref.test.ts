import test from "ava";
import { InvalidImageReferenceError, parseImageReference, sameRepository } from "./image-ref.js";

const SHA = "a".repeat(64);

const valid: Array<[string, { repository: string; tag?: string; digest?: string }]> = [
  ["nginx", { repository: "docker.io/library/nginx" }],
  ["nginx:1.25", { repository: "docker.io/library/nginx", tag: "1.25" }],
  ["library/nginx:latest", { repository: "docker.io/library/nginx", tag: "latest" }],
  ["docker.io/nginx", { repository: "docker.io/library/nginx" }],
  ["index.docker.io/library/nginx", { repository: "docker.io/library/nginx" }],
  ["bitnami/redis:7.2", { repository: "docker.io/bitnami/redis", tag: "7.2" }],
  ["ghcr.io/owner/app:v1.2.3", { repository: "ghcr.io/owner/app", tag: "v1.2.3" }],
  ["localhost/app", { repository: "localhost/app" }],
  ["localhost:5000/team/app:dev", { repository: "localhost:5000/team/app", tag: "dev" }],
  ["registry.example.com:443/a/b/c", { repository: "registry.example.com:443/a/b/c" }],
  ["10.0.0.1:5000/app", { repository: "10.0.0.1:5000/app" }],
  ["[::1]:5000/app:1", { repository: "[::1]:5000/app", tag: "1" }],
  [`nginx@sha256:${SHA}`, { repository: "docker.io/library/nginx", digest: `sha256:${SHA}` }],
  [`ghcr.io/o/app:1.0@sha256:${SHA}`, { repository: "ghcr.io/o/app", tag: "1.0", digest: `sha256:${SHA}` }],
  [`app@sha512:${"b".repeat(128)}`, { repository: "docker.io/library/app", digest: `sha512:${"b".repeat(128)}` }],
  ["my_app__x.y-z---w:_T.ag-1", { repository: "docker.io/library/my_app__x.y-z---w", tag: "_T.ag-1" }],
  ["Registry.Example.com/app", { repository: "Registry.Example.com/app" }],
  ["localhost:5000", { repository: "docker.io/library/localhost", tag: "5000" }],
  [`app:${"t".repeat(128)}`, { repository: "docker.io/library/app", tag: "t".repeat(128) }],
];

for (const [input, want] of valid) {
  test(`parses ${input.length > 60 ? `${input.slice(0, 60)}…` : input}`, (t) => {
    t.deepEqual(parseImageReference(input), want);
  });
}

const invalid: Array<[string, RegExp]> = [
  ["", /empty/],
  ["Nginx", /repository path "Nginx" must be lowercase/],
  ["ghcr.io/Owner/app", /repository path "Owner\/app" must be lowercase/],
  ["nginx:", /tag after ":" is empty/],
  ["nginx:-bad", /tag "-bad" must consist of/],
  [`nginx:${"t".repeat(129)}`, /129 characters long; at most 128/],
  ["nginx@sha256:abc", /sha256 digest needs exactly 64 lowercase hexadecimal/],
  [`nginx@sha256:${"A".repeat(64)}`, /64 lowercase hexadecimal/],
  [`nginx@md5:${"a".repeat(32)}`, /digest algorithm "md5" is not supported/],
  ["nginx@", /digest "" must have the form algorithm:hex/],
  ["ghcr.io/", /repository path after the registry host is empty/],
  ["ghcr.io//app", /empty component/],
  ["app/", /empty component/],
  ["-app", /repository path component "-app"/],
  ["a..b", /repository path component "a..b"/],
  ["a/b$c", /repository path component "b\$c"/],
  ["exa_mple.com/app", /registry host "exa_mple.com" must be a DNS name/],
  ["example.com:http/app", /registry port "http" must be a number/],
  ["example.com:70000/app", /above 65535/],
  ["nginx 1.25", /whitespace/],
  [":tag", /repository name is empty/],
  [SHA, /64-character hexadecimal/],
  [`ghcr.io/${"a".repeat(300)}`, /at most 255/],
  [`ghcr.io/${"a".repeat(600)}`, /608 characters long; at most 512/],
];

for (const [i, [input, message]] of invalid.entries()) {
  test(`rejects #${i} ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`, (t) => {
    const err = t.throws(() => parseImageReference(input), { instanceOf: InvalidImageReferenceError });
    t.regex(err?.message ?? "", message);
    if (input !== "") t.true(err?.message.startsWith("invalid image reference "));
  });
}

test("sameRepository compares normalized repositories", (t) => {
  t.true(sameRepository("nginx", "docker.io/library/nginx:1.25"));
  t.true(sameRepository(`index.docker.io/library/nginx@sha256:${SHA}`, "nginx:latest"));
  t.true(sameRepository(parseImageReference("ghcr.io/o/app:1"), "ghcr.io/o/app:2"));
  t.false(sameRepository("nginx", "ghcr.io/library/nginx"));
  t.false(sameRepository("ghcr.io/o/app", "ghcr.io/o/app-sidecar"));
  t.false(sameRepository("nginx", "not a valid image"));
  t.false(sameRepository("BAD", "BAD"));
});
