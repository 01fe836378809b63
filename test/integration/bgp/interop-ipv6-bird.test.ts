// IPv6 unicast interop with bird in network namespaces (see ipv6-scenario.ts).
import { describeIpv6Interop } from './ipv6-scenario.js';

describeIpv6Interop('bird');
