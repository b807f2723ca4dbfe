// SMPP 3.4 constants. Section numbers refer to the SMPP v3.4 specification (issue 1.2, 1999):
//   §5.1.2 command_id, §5.1.3 command_status, §5.2 mandatory field values, §5.3.2 TLV tags.

/** The header is four 4-octet integers: command_length, command_id, command_status, sequence_number (§3.2). */
export const HEADER_LENGTH = 16;

/** Largest command_length accepted by default: SMPP sets no limit, but a PDU holds at most ~64 KiB of TLVs. */
export const DEFAULT_MAX_COMMAND_LENGTH = 64 * 1024;

/** interface_version sent in binds and sc_interface_version (§5.2.4): 0x34 = SMPP 3.4. */
export const SMPP_VERSION_34 = 0x34;

/** A response's command_id is its request's with the top bit set (§5.1.2). */
export const RESPONSE_BIT = 0x80000000;

/** §5.1.2. Written out (not computed with `|`, which yields a negative signed int in JS). */
export const CommandId = {
  generic_nack: 0x80000000,
  bind_receiver: 0x00000001,
  bind_receiver_resp: 0x80000001,
  bind_transmitter: 0x00000002,
  bind_transmitter_resp: 0x80000002,
  query_sm: 0x00000003,
  query_sm_resp: 0x80000003,
  submit_sm: 0x00000004,
  submit_sm_resp: 0x80000004,
  deliver_sm: 0x00000005,
  deliver_sm_resp: 0x80000005,
  unbind: 0x00000006,
  unbind_resp: 0x80000006,
  replace_sm: 0x00000007,
  replace_sm_resp: 0x80000007,
  cancel_sm: 0x00000008,
  cancel_sm_resp: 0x80000008,
  bind_transceiver: 0x00000009,
  bind_transceiver_resp: 0x80000009,
  outbind: 0x0000000b,
  enquire_link: 0x00000015,
  enquire_link_resp: 0x80000015,
  submit_multi: 0x00000021,
  submit_multi_resp: 0x80000021,
  alert_notification: 0x00000102,
  data_sm: 0x00000103,
  data_sm_resp: 0x80000103,
} as const;

export type CommandName = keyof typeof CommandId;

const COMMAND_NAMES = new Map<number, CommandName>(
  (Object.entries(CommandId) as [CommandName, number][]).map(([name, id]) => [id, name]),
);

/** The SMPP 3.4 name of a command id, or null if 3.4 does not define it. */
export function commandName(commandId: number): CommandName | null {
  return COMMAND_NAMES.get(commandId) ?? null;
}

export function isResponseId(commandId: number): boolean {
  return commandId >>> 0 >= RESPONSE_BIT;
}

/** command_status values (§5.1.3, table 5-2). 0x400–0x4FF are SMSC vendor specific. */
export const CommandStatus = {
  ESME_ROK: 0x00,
  ESME_RINVMSGLEN: 0x01,
  ESME_RINVCMDLEN: 0x02,
  ESME_RINVCMDID: 0x03,
  ESME_RINVBNDSTS: 0x04,
  ESME_RALYBND: 0x05,
  ESME_RINVPRTFLG: 0x06,
  ESME_RINVREGDLVFLG: 0x07,
  ESME_RSYSERR: 0x08,
  ESME_RINVSRCADR: 0x0a,
  ESME_RINVDSTADR: 0x0b,
  ESME_RINVMSGID: 0x0c,
  ESME_RBINDFAIL: 0x0d,
  ESME_RINVPASWD: 0x0e,
  ESME_RINVSYSID: 0x0f,
  ESME_RCANCELFAIL: 0x11,
  ESME_RREPLACEFAIL: 0x13,
  ESME_RMSGQFUL: 0x14,
  ESME_RINVSERTYP: 0x15,
  ESME_RINVNUMDESTS: 0x33,
  ESME_RINVDLNAME: 0x34,
  ESME_RINVDESTFLAG: 0x40,
  ESME_RINVSUBREP: 0x42,
  ESME_RINVESMCLASS: 0x43,
  ESME_RCNTSUBDL: 0x44,
  ESME_RSUBMITFAIL: 0x45,
  ESME_RINVSRCTON: 0x48,
  ESME_RINVSRCNPI: 0x49,
  ESME_RINVDSTTON: 0x50,
  ESME_RINVDSTNPI: 0x51,
  ESME_RINVSYSTYP: 0x53,
  ESME_RINVREPFLAG: 0x54,
  ESME_RINVNUMMSGS: 0x55,
  ESME_RTHROTTLED: 0x58,
  ESME_RINVSCHED: 0x61,
  ESME_RINVEXPIRY: 0x62,
  ESME_RINVDFTMSGID: 0x63,
  ESME_RX_T_APPN: 0x64,
  ESME_RX_P_APPN: 0x65,
  ESME_RX_R_APPN: 0x66,
  ESME_RQUERYFAIL: 0x67,
  ESME_RINVOPTPARSTREAM: 0xc0,
  ESME_ROPTPARNOTALLWD: 0xc1,
  ESME_RINVPARLEN: 0xc2,
  ESME_RMISSINGOPTPARAM: 0xc3,
  ESME_RINVOPTPARAMVAL: 0xc4,
  ESME_RDELIVERYFAILURE: 0xfe,
  ESME_RUNKNOWNERR: 0xff,
} as const;

export type StatusName = keyof typeof CommandStatus;

// Wording from table 5-2, lightly expanded where the spec's is cryptic.
const STATUS_DESCRIPTIONS: Record<StatusName, string> = {
  ESME_ROK: 'No error',
  ESME_RINVMSGLEN: 'Message length is invalid',
  ESME_RINVCMDLEN: 'Command length is invalid',
  ESME_RINVCMDID: 'Invalid command ID',
  ESME_RINVBNDSTS: 'Incorrect bind status for given command',
  ESME_RALYBND: 'ESME already in bound state',
  ESME_RINVPRTFLG: 'Invalid priority flag',
  ESME_RINVREGDLVFLG: 'Invalid registered delivery flag',
  ESME_RSYSERR: 'System error',
  ESME_RINVSRCADR: 'Invalid source address',
  ESME_RINVDSTADR: 'Invalid destination address',
  ESME_RINVMSGID: 'Message ID is invalid',
  ESME_RBINDFAIL: 'Bind failed',
  ESME_RINVPASWD: 'Invalid password',
  ESME_RINVSYSID: 'Invalid system ID',
  ESME_RCANCELFAIL: 'cancel_sm failed',
  ESME_RREPLACEFAIL: 'replace_sm failed',
  ESME_RMSGQFUL: 'Message queue full',
  ESME_RINVSERTYP: 'Invalid service type',
  ESME_RINVNUMDESTS: 'Invalid number of destinations',
  ESME_RINVDLNAME: 'Invalid distribution list name',
  ESME_RINVDESTFLAG: 'Destination flag is invalid (submit_multi)',
  ESME_RINVSUBREP: "Invalid 'submit with replace' request",
  ESME_RINVESMCLASS: 'Invalid esm_class field data',
  ESME_RCNTSUBDL: 'Cannot submit to distribution list',
  ESME_RSUBMITFAIL: 'submit_sm or submit_multi failed',
  ESME_RINVSRCTON: 'Invalid source address TON',
  ESME_RINVSRCNPI: 'Invalid source address NPI',
  ESME_RINVDSTTON: 'Invalid destination address TON',
  ESME_RINVDSTNPI: 'Invalid destination address NPI',
  ESME_RINVSYSTYP: 'Invalid system_type field',
  ESME_RINVREPFLAG: 'Invalid replace_if_present flag',
  ESME_RINVNUMMSGS: 'Invalid number of messages',
  ESME_RTHROTTLED: 'Throttling error (the ESME exceeded its allowed message rate)',
  ESME_RINVSCHED: 'Invalid scheduled delivery time',
  ESME_RINVEXPIRY: 'Invalid message validity period (expiry time)',
  ESME_RINVDFTMSGID: 'Predefined message invalid or not found',
  ESME_RX_T_APPN: 'ESME receiver temporary application error',
  ESME_RX_P_APPN: 'ESME receiver permanent application error',
  ESME_RX_R_APPN: 'ESME receiver reject message error',
  ESME_RQUERYFAIL: 'query_sm request failed',
  ESME_RINVOPTPARSTREAM: 'Error in the optional part of the PDU body',
  ESME_ROPTPARNOTALLWD: 'Optional parameter not allowed',
  ESME_RINVPARLEN: 'Invalid parameter length',
  ESME_RMISSINGOPTPARAM: 'Expected optional parameter missing',
  ESME_RINVOPTPARAMVAL: 'Invalid optional parameter value',
  ESME_RDELIVERYFAILURE: 'Delivery failure (data_sm_resp)',
  ESME_RUNKNOWNERR: 'Unknown error',
};

const STATUS_NAMES = new Map<number, StatusName>(
  (Object.entries(CommandStatus) as [StatusName, number][]).map(([name, code]) => [code, name]),
);

const hex8 = (n: number) => `0x${(n >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;

/** 'ESME_RTHROTTLED', or null for a code SMPP 3.4 does not name (reserved or vendor specific). */
export function statusName(status: number): StatusName | null {
  return STATUS_NAMES.get(status) ?? null;
}

/** One line for logs and API errors, e.g. `ESME_RTHROTTLED (0x00000058): Throttling error (…)`. */
export function describeStatus(status: number): string {
  const name = statusName(status);
  if (name) return `${name} (${hex8(status)}): ${STATUS_DESCRIPTIONS[name]}`;
  if (status >= 0x400 && status <= 0x4ff) return `${hex8(status)}: SMSC vendor-specific error`;
  return `${hex8(status)}: reserved / unknown error`;
}

/**
 * Statuses after which the same message may succeed if submitted again later, possibly on another bind
 * or route. Everything else — malformed or refused content, bad addresses, vendor codes we know nothing
 * about, ESME_RUNKNOWNERR, ESME_RSUBMITFAIL — is permanent: retrying a message the carrier judged bad
 * only burns throughput and can loop forever. A connector that knows better can build its own set from
 * this one.
 */
export const TEMPORARY_STATUSES: ReadonlySet<number> = new Set<number>([
  CommandStatus.ESME_RTHROTTLED, // we sent too fast: back off, then resend (§5.1.3)
  CommandStatus.ESME_RMSGQFUL, // the SMSC's queue for this destination is full, it will drain
  CommandStatus.ESME_RSYSERR, // SMSC-internal failure, not a verdict on the message
  CommandStatus.ESME_RX_T_APPN, // "temporary" by definition
  CommandStatus.ESME_RINVBNDSTS, // the bind was not (yet/any more) in a state to submit: retry after rebind
  CommandStatus.ESME_RDELIVERYFAILURE, // data_sm_resp: transient delivery failure (detail in delivery_failure_reason)
]);

export function isTemporaryError(status: number): boolean {
  return TEMPORARY_STATUSES.has(status);
}

/** TLV tags (§5.3.2). */
export const TlvTag = {
  dest_addr_subunit: 0x0005,
  dest_network_type: 0x0006,
  dest_bearer_type: 0x0007,
  dest_telematics_id: 0x0008,
  source_addr_subunit: 0x000d,
  source_network_type: 0x000e,
  source_bearer_type: 0x000f,
  source_telematics_id: 0x0010,
  qos_time_to_live: 0x0017,
  payload_type: 0x0019,
  additional_status_info_text: 0x001d,
  receipted_message_id: 0x001e,
  ms_msg_wait_facilities: 0x0030,
  privacy_indicator: 0x0201,
  source_subaddress: 0x0202,
  dest_subaddress: 0x0203,
  user_message_reference: 0x0204,
  user_response_code: 0x0205,
  source_port: 0x020a,
  destination_port: 0x020b,
  sar_msg_ref_num: 0x020c,
  language_indicator: 0x020d,
  sar_total_segments: 0x020e,
  sar_segment_seqnum: 0x020f,
  sc_interface_version: 0x0210,
  callback_num_pres_ind: 0x0302,
  callback_num_atag: 0x0303,
  number_of_messages: 0x0304,
  callback_num: 0x0381,
  dpf_result: 0x0420,
  set_dpf: 0x0421,
  ms_availability_status: 0x0422,
  network_error_code: 0x0423,
  message_payload: 0x0424,
  delivery_failure_reason: 0x0425,
  more_messages_to_send: 0x0426,
  message_state: 0x0427,
  ussd_service_op: 0x0501,
  display_time: 0x1201,
  sms_signal: 0x1203,
  ms_validity: 0x1204,
  alert_on_message_delivery: 0x130c,
  its_reply_type: 0x1380,
  its_session_info: 0x1383,
} as const;

/** message_state TLV values (§5.3.2, message_state). */
export const MessageState = {
  ENROUTE: 1,
  DELIVERED: 2,
  EXPIRED: 3,
  DELETED: 4,
  UNDELIVERABLE: 5,
  ACCEPTED: 6,
  UNKNOWN: 7,
  REJECTED: 8,
} as const;

/** esm_class bits (§5.2.12). */
export const EsmClass = {
  /** Bits 1-0: messaging mode. */
  MODE_MASK: 0x03,
  MODE_DEFAULT: 0x00,
  MODE_DATAGRAM: 0x01,
  MODE_FORWARD: 0x02,
  MODE_STORE_AND_FORWARD: 0x03,
  /** Bits 5-2: message type. */
  TYPE_MASK: 0x3c,
  TYPE_DEFAULT: 0x00,
  TYPE_DELIVERY_RECEIPT: 0x04,
  TYPE_DELIVERY_ACK: 0x08,
  TYPE_MANUAL_ACK: 0x10,
  TYPE_CONVERSATION_ABORT: 0x18,
  TYPE_INTERMEDIATE_NOTIFICATION: 0x20,
  /** Bits 7-6: GSM network features. UDHI = short_message starts with a User Data Header. */
  UDHI: 0x40,
  REPLY_PATH: 0x80,
} as const;

/** data_coding values (§5.2.19) we use or meet. */
export const DataCoding = {
  SMSC_DEFAULT: 0x00, // GSM-7 on nearly every SMSC
  IA5: 0x01,
  BINARY_2: 0x02,
  LATIN1: 0x03,
  BINARY: 0x04,
  JIS: 0x05,
  CYRILLIC: 0x06,
  HEBREW: 0x07,
  UCS2: 0x08,
} as const;

/** registered_delivery bits (§5.2.17). */
export const RegisteredDelivery = {
  /** Bits 1-0: SMSC delivery receipt. */
  RECEIPT_MASK: 0x03,
  RECEIPT_NONE: 0x00,
  RECEIPT_ALWAYS: 0x01,
  RECEIPT_ON_FAILURE: 0x02,
  /** Bits 3-2: SME originated acknowledgement. */
  SME_DELIVERY_ACK: 0x04,
  SME_MANUAL_ACK: 0x08,
  /** Bit 4. */
  INTERMEDIATE_NOTIFICATION: 0x10,
} as const;

/** Type of number (§5.2.5). */
export const Ton = {
  UNKNOWN: 0,
  INTERNATIONAL: 1,
  NATIONAL: 2,
  NETWORK_SPECIFIC: 3,
  SUBSCRIBER: 4,
  ALPHANUMERIC: 5,
  ABBREVIATED: 6,
} as const;

/** Numbering plan indicator (§5.2.6). */
export const Npi = {
  UNKNOWN: 0,
  ISDN: 1, // E.163/E.164
  DATA: 3,
  TELEX: 4,
  LAND_MOBILE: 6,
  NATIONAL: 8,
  PRIVATE: 9,
  ERMES: 10,
  INTERNET: 14,
  WAP: 18,
} as const;
