export * from './clock.js';
export * from './errors.js';
export * from './java-hash.js';
export * from './types.js';
