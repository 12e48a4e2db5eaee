import { render } from "solid-js/web";
import { App } from "./App.js";
import { markAppRendered } from "./lib/perf.js";
import "./styles/base.css";
import "./styles/components.css";
import "./styles/pages.css";

const root = document.getElementById("root");
if (!root) throw new Error("#root missing from index.html");
render(() => <App />, root);
markAppRendered();
