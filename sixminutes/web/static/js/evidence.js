// How sure a window's ratio or mean is, as the service judges it (sixminutes/evidence.py):
// the Wilson interval of a ratio, Student's t interval of a mean, at the rule's confidence.

/** The normal quantile of a two-sided interval at this confidence (Acklam's approximation). */
export function zOf(confidence) {
  if (!(confidence > 0)) return 0;
  const p = 0.5 + confidence / 2;
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  if (p > 0.97575) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** Student's t quantile with df degrees of freedom at the normal quantile z (Cornish–Fisher). */
export function tOf(z, df) {
  const z2 = z * z;
  return z + (z2 + 1) * z / 4 / df + ((5 * z2 + 16) * z2 + 3) * z / 96 / df ** 2
    + (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384 / df ** 3;
}

/** [low, high] of the proportion k/n. */
export function wilson(k, n, z) {
  if (n <= 0) return [0, 1];
  const p = Math.min(Math.max(k / n, 0), 1), z2 = z * z;
  const centre = p + z2 / (2 * n), spread = z * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  const scale = 1 + z2 / n;
  return [k <= 0 ? 0 : Math.min(p, (centre - spread) / scale), k >= n ? 1 : Math.max(p, (centre + spread) / scale)];
}

/** [low, high] of a mean from a Stat's sum, count and sum of squares. */
export function meanInterval(sum, count, squares, z) {
  if (count <= 0) return [-Infinity, Infinity];
  const mean = sum / count;
  if (z === 0) return [mean, mean];
  if (count < 2) return [-Infinity, Infinity];
  const spread = tOf(z, count - 1) * Math.sqrt(Math.max(0, (squares - sum * mean) / (count - 1)) / count);
  return [mean - spread, mean + spread];
}
