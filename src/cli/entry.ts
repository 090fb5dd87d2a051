import { main } from './main.js';

// The program's entry (the source build's dist/codedeploy-agent.mjs and the single executable's first
// chunk): main.ts only defines main(), so the executable's CommonJS chunks need no top-level await.
void main(process.argv).then((code) => {
  process.exitCode = code;
});
