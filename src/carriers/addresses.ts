import { Npi, Ton } from '../smpp/constants.js';

export interface SmppAddress {
  ton: number;
  npi: number;
  addr: string;
}

interface AddressRules {
  source_ton?: number | undefined;
  source_npi?: number | undefined;
  dest_ton: number;
  dest_npi: number;
}

/**
 * TON/NPI of the sender from its form, the way carriers expect them: an alphanumeric id is
 * TON 5 (alphanumeric) / NPI 0; an international number TON 1 / NPI 1 (E.164, without '+'); a short
 * code TON 3 (network specific) / NPI 0. A connector may force either value.
 */
export function sourceAddress(from: string, rules: AddressRules): SmppAddress {
  let address: SmppAddress;
  if (/^\+\d+$/.test(from)) address = { ton: Ton.INTERNATIONAL, npi: Npi.ISDN, addr: from.slice(1) };
  else if (/^\d{1,8}$/.test(from)) address = { ton: Ton.NETWORK_SPECIFIC, npi: Npi.UNKNOWN, addr: from };
  else if (/^\d+$/.test(from)) address = { ton: Ton.INTERNATIONAL, npi: Npi.ISDN, addr: from };
  else address = { ton: Ton.ALPHANUMERIC, npi: Npi.UNKNOWN, addr: from };
  return {
    ton: rules.source_ton ?? address.ton,
    npi: rules.source_npi ?? address.npi,
    addr: address.addr,
  };
}

/** Destinations are E.164 numbers, sent without the '+'. */
export function destinationAddress(to: string, rules: AddressRules): SmppAddress {
  return { ton: rules.dest_ton, npi: rules.dest_npi, addr: to.startsWith('+') ? to.slice(1) : to };
}
