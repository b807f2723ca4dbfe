/** Counters since start (or the last reset). */
export interface SimulatorStats {
  /** Successful binds, and binds refused (wrong system_id or password). */
  binds: number;
  bindsRefused: number;
  /** Sessions bound right now. */
  boundSessions: number;
  submitsReceived: number;
  submitsAccepted: number;
  /** Answered with an error status other than ESME_RTHROTTLED (reject_rate, wrong bind type, no destination). */
  submitsRejected: number;
  submitsThrottled: number;
  /** deliver_sm sent, counting every attempt; acknowledged = answered ESME_ROK; refused = any other status. */
  receiptsSent: number;
  receiptsAcknowledged: number;
  receiptsRefused: number;
  moSent: number;
  moAcknowledged: number;
  moRefused: number;
  /** deliver_sm sent again after an error status or a timeout. */
  redeliveries: number;
  /** Given up after max_delivery_attempts. */
  deliveriesAbandoned: number;
  /** Receipts and MO waiting for a receiver bind or for window room, right now. */
  queued: number;
  /** Not queued because queue_limit was reached. */
  queueDropped: number;
  /** Connections closed by drop_after_submits. */
  connectionsDropped: number;
  stalls: number;
  /** submit_sm received and not yet answered, now and at most. */
  outstanding: number;
  maxOutstanding: number;
  /** Most submit_sm received within any sliding 1 s window. */
  maxTpsObserved: number;
}

export function emptyStats(): SimulatorStats {
  return {
    binds: 0,
    bindsRefused: 0,
    boundSessions: 0,
    submitsReceived: 0,
    submitsAccepted: 0,
    submitsRejected: 0,
    submitsThrottled: 0,
    receiptsSent: 0,
    receiptsAcknowledged: 0,
    receiptsRefused: 0,
    moSent: 0,
    moAcknowledged: 0,
    moRefused: 0,
    redeliveries: 0,
    deliveriesAbandoned: 0,
    queued: 0,
    queueDropped: 0,
    connectionsDropped: 0,
    stalls: 0,
    outstanding: 0,
    maxOutstanding: 0,
    maxTpsObserved: 0,
  };
}
