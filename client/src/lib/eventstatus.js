// What the event page says about itself: its phase after a failed start or a change of
// the live connection, the status next to the list, the tab's title and the sentences
// announced after a vote or a moderation toggle. Pure: every input is an argument.

import { ApiError } from './api.js';
import { isUnknownEvent } from './live.js';

/**
 * The page's phases: 'loading' | 'ready' | 'unknown-event' | 'wrong-secret' | 'unreachable'.
 * The last three are what a failed start ends in; only 'unreachable' is retried.
 */
export function phaseAfterError(error) {
  if (isUnknownEvent(error)) return 'unknown-event';
  if (isWrongSecret(error)) return 'wrong-secret';
  return 'unreachable';
}

/** A host request refused for its secret. */
export function isWrongSecret(error) {
  return error instanceof ApiError && error.status === 401;
}

/** The phases in which the event's updates have ended for good. */
export function isFinalPhase(phase) {
  return phase === 'unknown-event' || phase === 'wrong-secret';
}

/**
 * A state the live connection reported (see live.js): either a final phase for the page
 * (`{ phase }`) or the connection's state to show (`{ connection }`).
 */
export function liveStateChange(state) {
  return isFinalPhase(state) ? { phase: state } : { connection: state };
}

const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  polling: 'Auto-updating',
  reconnecting: 'Reconnecting…',
};

/** The status beside the list. A lost connection is said before a pause: it is what makes the page out of date. */
export function statusText(connection, paused) {
  return paused && connection !== 'reconnecting' ? 'Paused' : CONNECTION_TEXT[connection];
}

/** The tab's title; a ready page counts its open questions. */
export function pageTitle({ phase, isHost, openCount }) {
  if (phase === 'unknown-event') return 'Event not found · We were wondering';
  if (phase === 'wrong-secret') return 'Wrong host link · We were wondering';
  const count = phase === 'ready' && openCount > 0 ? `(${openCount}) ` : '';
  return `${count}${isHost ? 'Host: your event' : 'Questions'} · We were wondering`;
}

/** What a screen reader hears once a vote was counted or withdrawn. */
export function voteAnnouncement(up) {
  return up ? 'Vote counted.' : 'Vote withdrawn.';
}

/** What the host is told once a moderation toggle (`what`: 'answered' | 'hidden') took effect. */
export function toggleAnnouncement(what, on) {
  if (what === 'hidden') return on ? 'Question hidden from guests.' : 'Question visible to guests again.';
  if (what === 'approved') return on ? 'Question approved: guests see it now.' : 'Question sent back to review.';
  if (what === 'spotlight') return on ? 'Question in the spotlight.' : 'Spotlight removed.';
  return on ? 'Marked as answered.' : 'Marked as not answered.';
}
