import { For } from "solid-js";

// An image reference with the tag or digest emphasised: "registry/acme/web:<b>1.2.0</b>".
export function splitImage(image: string): { repo: string; version: string } {
  const at = image.indexOf("@");
  if (at >= 0) return { repo: image.slice(0, at), version: `@${image.slice(at + 1, at + 20)}…` };
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  if (colon > slash) return { repo: image.slice(0, colon), version: `:${image.slice(colon + 1)}` };
  return { repo: image, version: "" };
}

export function ImageRef(props: { image: string }) {
  const parts = () => splitImage(props.image);
  // Line breaks may fall after a "/" of the repository; the tag stays in one piece.
  const segments = () => parts().repo.split("/");
  return (
    <span class="image-ref" title={props.image}>
      <span class="image-repo">
        <For each={segments()}>
          {(segment, i) => (
            <>
              {segment}
              {i() < segments().length - 1 ? "/" : ""}
              <wbr />
            </>
          )}
        </For>
      </span>
      <strong class="image-version">{parts().version}</strong>
    </span>
  );
}
