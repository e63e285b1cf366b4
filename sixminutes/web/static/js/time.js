// 6-minute windows and how times are shown (this browser's time zone, or UTC).

export const WINDOW = 360; // seconds
export const DAY = 86400;

export const windowOf = (epoch) => epoch - (epoch % WINDOW);
export const nowEpoch = () => Math.floor(Date.now() / 1000);
export const currentWindow = () => windowOf(nowEpoch());

let utc = localStorage.getItem("sixminutes.utc") === "1";
export const isUTC = () => utc;
export function setUTC(value) {
  utc = value;
  localStorage.setItem("sixminutes.utc", value ? "1" : "0");
}

const pad = (n) => String(n).padStart(2, "0");

function parts(epoch) {
  const d = new Date(epoch * 1000);
  return utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
}

/** "14:06" */
export function hhmm(epoch) {
  const [, , , hh, mm] = parts(epoch);
  return `${pad(hh)}:${pad(mm)}`;
}

/** "14:06–14:12" for a window start. */
export const windowRange = (t) => `${hhmm(t)}–${hhmm(t + WINDOW)}`;

/** "2024-05-01 14:06:00": what plotly's date axes read (no time-zone conversion there). */
export function plotDate(epoch) {
  const [y, mo, d, hh, mm, ss] = parts(epoch);
  return `${y}-${pad(mo)}-${pad(d)} ${pad(hh)}:${pad(mm)}:${pad(ss)}`;
}

/** "2024-05-01 14:06:07 UTC" (or the local zone's name). */
export function dateTime(epoch) {
  return `${plotDate(epoch)} ${zoneName()}`;
}

export function zoneName() {
  if (utc) return "UTC";
  const name = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
    .formatToParts(new Date()).find((p) => p.type === "timeZoneName");
  return name ? name.value : "local";
}
