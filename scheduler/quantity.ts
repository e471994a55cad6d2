/** Kubernetes resource quantities, read where proofpod applies them itself (local limits, build parallelism). */

/** Bytes of a Kubernetes memory quantity ("512Mi", "2G", 1e9), or undefined when it is not one. */
export function quantityBytes(quantity: string | number | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  if (typeof quantity === 'number') return Math.floor(quantity);
  const match = /^([0-9]+(?:\.[0-9]+)?)([kMGTPE]i?|m)?$/.exec(quantity);
  if (!match) return undefined;
  const units: Record<string, number> = {
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
    m: 1e-3,
  };
  return Math.floor(Number(match[1]) * (match[2] ? units[match[2]]! : 1));
}

/** Cores of a Kubernetes CPU quantity ("500m", "2", 1.5), or undefined when it is not one. */
export function quantityCores(quantity: string | number | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  if (typeof quantity === 'number') return quantity;
  const match = /^([0-9]+(?:\.[0-9]+)?)(m)?$/.exec(quantity);
  return match ? Number(match[1]) / (match[2] ? 1000 : 1) : undefined;
}
