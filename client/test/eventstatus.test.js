import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/lib/api.js';
import {
  isFinalPhase,
  liveStateChange,
  pageTitle,
  phaseAfterError,
  statusText,
  toggleAnnouncement,
  voteAnnouncement,
} from '../src/lib/eventstatus.js';

describe('the page after a failed start', () => {
  it('tells an unknown event from a wrong host link from an unreachable server', () => {
    expect(phaseAfterError(new ApiError(404, 'no such event'))).toBe('unknown-event');
    expect(phaseAfterError(new ApiError(400, 'bad id'))).toBe('unknown-event');
    expect(phaseAfterError(new ApiError(401, 'wrong secret'))).toBe('wrong-secret');
    expect(phaseAfterError(new ApiError(0, 'offline'))).toBe('unreachable');
    expect(phaseAfterError(new ApiError(503, 'busy'))).toBe('unreachable');
    expect(phaseAfterError(new TypeError('bug'))).toBe('unreachable');
  });

  it('ends the updates only for an unknown event or a wrong host link', () => {
    expect(['unknown-event', 'wrong-secret'].every(isFinalPhase)).toBe(true);
    expect(['loading', 'ready', 'unreachable'].some(isFinalPhase)).toBe(false);
  });
});

describe('what the live connection reports', () => {
  it('ends the page for the final states and shows the others as the connection', () => {
    expect(liveStateChange('unknown-event')).toEqual({ phase: 'unknown-event' });
    expect(liveStateChange('wrong-secret')).toEqual({ phase: 'wrong-secret' });
    expect(liveStateChange('reconnecting')).toEqual({ connection: 'reconnecting' });
    expect(liveStateChange('polling')).toEqual({ connection: 'polling' });
  });

  it('says a lost connection before a pause', () => {
    expect(statusText('live', false)).toBe('Live');
    expect(statusText('polling', false)).toBe('Auto-updating');
    expect(statusText('live', true)).toBe('Paused');
    expect(statusText('reconnecting', true)).toBe('Reconnecting…');
    expect(statusText('connecting', false)).toBe('Connecting…');
  });
});

describe('the tab title', () => {
  it('counts open questions only once the page is ready', () => {
    expect(pageTitle({ phase: 'ready', isHost: false, openCount: 3 })).toBe('(3) Questions · We were wondering');
    expect(pageTitle({ phase: 'ready', isHost: true, openCount: 0 })).toBe('Host: your event · We were wondering');
    expect(pageTitle({ phase: 'loading', isHost: true, openCount: 2 })).toBe('Host: your event · We were wondering');
  });

  it('names the problem when there is one', () => {
    expect(pageTitle({ phase: 'unknown-event', isHost: false, openCount: 1 })).toBe('Event not found · We were wondering');
    expect(pageTitle({ phase: 'wrong-secret', isHost: true, openCount: 1 })).toBe('Wrong host link · We were wondering');
  });
});

describe('announcements', () => {
  it('says what a vote and each moderation toggle did', () => {
    expect(voteAnnouncement(true)).toBe('Vote counted.');
    expect(voteAnnouncement(false)).toBe('Vote withdrawn.');
    expect(toggleAnnouncement('answered', true)).toBe('Marked as answered.');
    expect(toggleAnnouncement('answered', false)).toBe('Marked as not answered.');
    expect(toggleAnnouncement('hidden', true)).toBe('Question hidden from guests.');
    expect(toggleAnnouncement('hidden', false)).toBe('Question visible to guests again.');
  });
});
