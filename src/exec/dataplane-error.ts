// A failure at the dataplane edge (iptables, ipset): reported with context, never retried blindly.
export class DataplaneError extends Error {
  override readonly name = 'DataplaneError';
}
