// Kept in step with package.json by a test; lib/ reads no files, so it cannot import it.
export const VERSION = '0.1.0';
