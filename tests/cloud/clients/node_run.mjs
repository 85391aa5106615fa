// node node_run.mjs '<cfg JSON>': run the roslibjs suite under Node; print its results as JSON.
import * as ROSLIB from "roslib";
import { runSuite } from "./suite.mjs";

const results = await runSuite(ROSLIB, JSON.parse(process.argv[2]));
process.stdout.write(JSON.stringify(results) + "\n");
process.exit(0);
