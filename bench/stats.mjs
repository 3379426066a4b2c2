// Order statistics the benchmarks report: one definition, so every table's "median" and "p90"
// mean the same thing (the lower median for an even count; p90 the nearest rank).
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN
}
export const p90 = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)] : NaN
}
