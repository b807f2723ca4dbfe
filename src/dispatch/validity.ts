/**
 * SMPP relative time (SMPP 3.4 §7.1.2): "YYMMDDhhmmss000R", a duration. We give the carrier the
 * message's remaining validity so that it stops trying when we would; capped at 99 days, at least
 * one minute.
 */
export function relativeValidity(remainingMs: number): string {
  let seconds = Math.max(60, Math.min(Math.floor(remainingMs / 1000), 99 * 86400));
  const days = Math.floor(seconds / 86400);
  seconds -= days * 86400;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return `0000${two(days)}${two(hours)}${two(minutes)}${two(seconds)}000R`;
}
