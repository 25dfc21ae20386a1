import { describe, expect, it } from 'vitest';
import { canonicalEventId, guestLink, hostPath, insightsPath, parseRoute } from '../src/lib/route.js';

const EID = '01HZZZ0000AAAAAAAAAAAAAAAA';

describe('routes', () => {
  it('knows the three pages', () => {
    expect(parseRoute('/')).toEqual({ page: 'home' });
    expect(parseRoute(`/event/${EID}`)).toEqual({ page: 'event', eid: EID, secret: null });
    expect(parseRoute(`/event/${EID}/abc123`)).toEqual({ page: 'event', eid: EID, secret: 'abc123' });
    expect(parseRoute(`/event/${EID}/`)).toEqual({ page: 'event', eid: EID, secret: null });
  });

  it('puts the host\'s insights under the host URL only', () => {
    expect(parseRoute(`/event/${EID}/abc123/insights`)).toEqual({ page: 'insights', eid: EID, secret: 'abc123' });
    expect(parseRoute(`/event/${EID.toLowerCase()}/abc123/insights/`)).toEqual({
      page: 'insights',
      eid: EID,
      secret: 'abc123',
    });
    expect(insightsPath(EID, 'abc123')).toBe(`/event/${EID}/abc123/insights`);
    expect(parseRoute(`/event/${EID}/abc123/insight`)).toEqual({ page: 'not-found' });
    expect(parseRoute(`/event/${EID}/abc123/insights/more`)).toEqual({ page: 'not-found' });
  });

  it('canonicalises the event id (Crockford base32 is case-insensitive) but not the secret', () => {
    const lower = EID.toLowerCase();
    expect(parseRoute(`/event/${lower}`)).toEqual({ page: 'event', eid: EID, secret: null });
    expect(parseRoute(`/event/${lower}/AbC-x_1`)).toEqual({ page: 'event', eid: EID, secret: 'AbC-x_1' });
    expect(canonicalEventId('01hzzz0000aaaaaaaaaaaaaaaa')).toBe(EID);
  });

  it('sends anything else to not-found', () => {
    expect(parseRoute('/events')).toEqual({ page: 'not-found' });
    expect(parseRoute('/event')).toEqual({ page: 'not-found' });
    expect(parseRoute(`/event/${EID}/s/extra`)).toEqual({ page: 'not-found' });
    expect(parseRoute('/event/%E0%A4%A')).toEqual({ page: 'not-found' });
    expect(parseRoute('/event/<script>')).toEqual({ page: 'not-found' });
  });

  it('shares a guest link that never contains the secret', () => {
    const link = guestLink('https://example.test', EID);
    expect(link).toBe(`https://example.test/event/${EID}`);
    expect(hostPath(EID, 'sekrit')).toBe(`/event/${EID}/sekrit`);
    expect(link).not.toContain('sekrit');
  });
});
