// Worker threads do not inherit tsx's loader from the main thread (Node 20), so each worker
// registers it before importing the TypeScript worker module named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
