// Bundled by esbuild into build/browser_suite.js: window.runSuite(cfg) in Chromium.
import * as ROSLIB from "roslib";
import { runSuite } from "./suite.mjs";

window.runSuite = (cfg) => runSuite(ROSLIB, cfg);
