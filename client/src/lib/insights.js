// The host's insights page (design §7, "Insights"): pure rules over the server's timeline,
// audit and bursts. Which questions the chart draws, the chart's data and colours, the
// instant each position of the scrubber stands for, and how an audit record reads.

/** How many questions the vote-over-time chart draws. */
export const CHART_QUESTIONS_MAX = 6;
/** The timeline step the page asks for (the server raises it for a long session). */
export const TIMELINE_STEP_S = 10;

/** How many points a timeline holds. */
export function pointCount(timeline) {
  return Array.isArray(timeline?.asked) ? timeline.asked.length : 0;
}

/**
 * The instant (Unix ms) point `index` of the timeline stands for: the last millisecond of
 * its step, so the list `?at=` it is the state the chart shows there.
 */
export function instantOf(timeline, index) {
  const points = pointCount(timeline);
  if (points === 0) return null;
  const i = Math.min(Math.max(Math.trunc(index), 0), points - 1);
  return timeline.start + (i + 1) * timeline.step * 1000 - 1;
}

/** The scrubber's position in the middle of the session. */
export function middleIndex(timeline) {
  return Math.max(0, Math.floor((pointCount(timeline) - 1) / 2));
}

/**
 * The ids of the `max` questions with the most votes at the end of the timeline (ties: the
 * question with more votes earlier, then the older id), most votes first. Questions that
 * never had a vote are left out.
 */
export function topQuestions(timeline, max = CHART_QUESTIONS_MAX) {
  const series = Object.entries(timeline?.questions ?? {});
  const total = (values) => values.reduce((sum, v) => sum + v, 0);
  return series
    .filter(([, values]) => values.some((v) => v > 0))
    .sort(
      ([qa, a], [qb, b]) =>
        b[b.length - 1] - a[a.length - 1] || total(b) - total(a) || (qa < qb ? -1 : qa > qb ? 1 : 0),
    )
    .slice(0, max)
    .map(([qid]) => qid);
}

/**
 * The chart's data in uPlot's shape: the x values (Unix seconds, the end of each step)
 * followed by one array of votes per question of `qids`.
 */
export function chartData(timeline, qids) {
  const points = pointCount(timeline);
  const xs = Array.from({ length: points }, (_, i) => (instantOf(timeline, i) + 1) / 1000);
  return [xs, ...qids.map((qid) => timeline.questions[qid] ?? new Array(points).fill(0))];
}

// One hue per series, readable on the light and on the dark surface.
const PALETTE = {
  light: ['#4f35c2', '#c2410c', '#0f766e', '#b91c1c', '#1d4ed8', '#a16207'],
  dark: ['#a898ff', '#fdba74', '#5eead4', '#fca5a5', '#93c5fd', '#fde047'],
};

/** Whether a CSS colour (`rgb(…)`/`rgba(…)`) is dark: the surface of the dark theme. */
export function isDarkColor(css) {
  const match = /rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/.exec(css ?? '');
  if (!match) return false;
  const [r, g, b] = match.slice(1, 4).map(Number);
  // Relative luminance, roughly: below the middle grey is dark.
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128;
}

/** The series colours for the theme whose surface is `dark` or not. */
export function seriesColors(dark, count) {
  const palette = dark ? PALETTE.dark : PALETTE.light;
  return Array.from({ length: count }, (_, i) => palette[i % palette.length]);
}

/** A short label for a question in the chart's legend. */
export function shortLabel(text, max = 40) {
  if (!text) return 'Question';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

const KIND_WORDS = {
  hidden: ['Hidden', 'Shown again'],
  answered: ['Marked answered', 'Marked not answered'],
  approved: ['Approved', 'Sent to review'],
  spotlight: ['Put in the spotlight', 'Taken out of the spotlight'],
};

const quoted = (text) => `“${shortLabel(text, 80)}”`;

// The kinds that carry a value of their own, in words.
const VALUE_WORDS = {
  reply: (e) => (e.text ? `Answered in writing: ${quoted(e.text)}` : 'Written answer removed'),
  title: (e) => (e.title ? `Title set to ${quoted(e.title)}` : 'Title removed'),
  moderation: (e) => (e.moderation === 'pre-approve' ? 'New questions wait for review' : 'New questions show at once'),
  asking: (e) => (e.asking === 'closed' ? 'Questions closed' : 'Questions opened'),
  blocked_words: (e) =>
    Array.isArray(e.words) && e.words.length > 0 ? `Blocked words: ${e.words.join(', ')}` : 'No blocked words',
  cohost_minted: () => 'Co-host link created',
  cohost_revoked: () => 'Co-host link revoked',
};

/**
 * What one audit record did, in words: `hidden` on/off, `answered` on/off and the other
 * moderation kinds the server lists (approvals, the spotlight, a written answer, a
 * setting…), each with its value. An unknown kind reads as its name and fields, so a newer
 * server's kinds still show.
 */
export function describeAudit(entry) {
  const words = KIND_WORDS[entry?.kind];
  if (words && typeof entry.on === 'boolean') return entry.on ? words[0] : words[1];
  if (Object.hasOwn(VALUE_WORDS, entry?.kind ?? '')) return VALUE_WORDS[entry.kind](entry);
  const name = String(entry?.kind ?? 'record').replace(/_/g, ' ');
  const label = name.charAt(0).toUpperCase() + name.slice(1);
  const details = Object.entries(entry ?? {})
    .filter(([key]) => !['at', 'kind', 'question'].includes(key))
    .map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(', ') : String(value)}`);
  return details.length > 0 ? `${label} (${details.join('; ')})` : label;
}

/** A clock time for the page (hours, minutes, seconds, in the browser's zone). */
export function clockTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** How a burst reads: "12 new voters in 6 s, 92% of its 13 votes". */
export function describeBurst(burst) {
  const seconds = Math.max(0, Math.round((burst.end - burst.start) / 1000));
  const share = Math.round((burst.share ?? 0) * 100);
  return `${burst.new_voters} new voters in ${seconds} s, ${share}% of its ${burst.votes} votes`;
}

/** The file name the chart's PNG is saved under. */
export function pngFileName(eid) {
  return `votes-over-time-${eid}.png`;
}
