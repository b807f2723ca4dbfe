import type { Lane, MessageStatus } from '../store/schema.js';

export type { Lane, MessageStatus };

/** A send request as the API, the SMPP server and campaigns hand it to `MessageService`. */
export interface SubmitInput {
  to: string;
  country?: string | undefined;
  from: string;
  text: string;
  lane?: Lane | undefined;
  client_ref?: string | undefined;
  callback_url?: string | undefined;
  validity_minutes?: number | undefined;
  /** ISO 8601 with a time zone. */
  send_at?: string | undefined;
  /**
   * Internal callers only (Verify; no HTTP schema exposes it): the real text, sealed. `text` is then
   * its masked form, of the same length and encoding, which is what the history and the API show.
   */
  sealedText?: string | undefined;
  /** Internal callers only (campaigns): the campaign the message belongs to. */
  campaignId?: string | undefined;
}

/** What the customer is told when a message is accepted. */
export interface AcceptedMessage {
  id: string;
  status: MessageStatus;
  to: string;
  from: string;
  lane: Lane;
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
  parts: number;
  client_ref: string | null;
  send_at: string | null;
  expires_at: string;
  created_at: string;
}
