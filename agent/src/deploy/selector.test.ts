import test from "ava";
import { labelSelectorToString } from "./selector.js";

test("matchLabels and matchExpressions", (t) => {
  t.is(
    labelSelectorToString({
      matchLabels: { b: "2", a: "1" },
      matchExpressions: [
        { key: "tier", operator: "In", values: ["web", "api"] },
        { key: "env", operator: "NotIn", values: ["dev"] },
        { key: "has", operator: "Exists" },
        { key: "not", operator: "DoesNotExist" },
      ],
    }),
    "a=1,b=2,tier in (api,web),env notin (dev),has,!not",
  );
});

test("empty selector is refused", (t) => {
  t.throws(() => labelSelectorToString({}), { message: /empty pod selector/ });
  t.throws(() => labelSelectorToString(undefined), { message: /empty pod selector/ });
});

test("unknown operator is refused", (t) => {
  t.throws(() => labelSelectorToString({ matchExpressions: [{ key: "a", operator: "Gt" }] }), {
    message: /unsupported label selector operator "Gt"/,
  });
});
