export * from './certificate.js';
export * from './data-path.js';
export * from './report.js';
export * from './troubleshooting.js';
export * from './types.js';
export * from './webhook.js';
