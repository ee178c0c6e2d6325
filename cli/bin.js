#!/usr/bin/env -S node --no-memory-reducer
// Entry of the `instabase-stream` bin: lets plain node run the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
