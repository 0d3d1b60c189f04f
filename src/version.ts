// asgc's version, as package.json gives it (a test keeps the two equal); written here so that
// a bundled single executable knows it without reading package.json.
export const VERSION = '0.1.0';
