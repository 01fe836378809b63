// One BFD session in asynchronous mode (RFC 5880 §6): the AdminDown/Down/Init/Up state machine,
// the §6.8.6 reception rules, timer negotiation, poll/final sequences and jittered transmission.
// No I/O: packets go out through `hooks.send`, received ones come in through `receive` (already
// decoded and demultiplexed). Times are microseconds as on the wire, timers are node's.
import {
  BFD_STATE_NAMES,
  BfdDiagnostic,
  BfdState,
  type BfdPacket,
  type BfdStateName,
  diagnosticName,
} from './packet.js';
import type { ResolvedBfdOptions } from './options.js';

/** While not Up, we send at most once a second (§6.8.3). */
const SLOW_TX_US = 1_000_000;

export interface BfdStateChange {
  readonly from: BfdStateName;
  readonly to: BfdStateName;
  /** Our diagnostic after the change (why we left Up, e.g.). */
  readonly diagnostic: string;
  /** The peer's state as last heard; `AdminDown` when it took the session down on purpose. */
  readonly remoteState: BfdStateName;
}

export interface BfdSessionStatus {
  readonly state: BfdStateName;
  readonly remoteState: BfdStateName;
  readonly diagnostic: string;
  readonly localDiscriminator: number;
  readonly remoteDiscriminator: number;
  /** Interval our packets go out at now (before jitter); absent when we must not send periodically. */
  readonly txIntervalMs?: number;
  /** Time without a packet after which the session goes Down. */
  readonly detectionTimeMs?: number;
  readonly multiplier: number;
  readonly remoteMultiplier?: number;
  readonly remoteDemand: boolean;
}

export interface BfdSessionHooks {
  send(packet: BfdPacket): void;
  stateChanged(change: BfdStateChange): void;
}

export interface BfdSessionDeps {
  /** Monotonic milliseconds (default performance.now). */
  readonly now?: () => number;
  /** [0, 1) (default Math.random); drives the transmit jitter. */
  readonly random?: () => number;
}

interface Intervals {
  readonly txUs: number;
  readonly rxUs: number;
}

export class BfdSession {
  private stateValue: BfdState = BfdState.Down;
  private remoteState: BfdState = BfdState.Down;
  private remoteDiscriminator = 0;
  private diagnostic: number = BfdDiagnostic.None;
  private remoteMinRxUs = 1;
  private remoteDesiredMinTxUs = 0;
  private remoteDetectMult = 0;
  private remoteDemand = false;
  /**
   * Values in our packets, and values in force for our timing (during a poll they differ: a
   * slower tx and a lower required rx wait for the Final).
   */
  private advertised: Intervals;
  private inForce: Intervals;
  private polling = false;
  private lastReceived = 0;
  private txTimer: NodeJS.Timeout | undefined;
  private scheduledTxUs: number | undefined;
  private detectTimer: NodeJS.Timeout | undefined;
  private detectFiresAt = 0;
  private running = false;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    readonly localDiscriminator: number,
    private options: ResolvedBfdOptions,
    private readonly hooks: BfdSessionHooks,
    deps: BfdSessionDeps = {},
  ) {
    this.now = deps.now ?? (() => performance.now());
    this.random = deps.random ?? Math.random;
    this.advertised = this.inForce = this.target();
  }

  get state(): BfdStateName {
    return BFD_STATE_NAMES[this.stateValue];
  }

  /** Starts sending (slowly, in Down) and listening. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.transmit(false);
    this.scheduleTx();
  }

  /** Stops every timer; nothing is sent any more. */
  stop(): void {
    this.running = false;
    clearTimeout(this.txTimer);
    clearTimeout(this.detectTimer);
    this.txTimer = this.detectTimer = undefined;
    this.scheduledTxUs = undefined;
  }

  /** Takes the session administratively down (§6.8.16): the peer sees AdminDown, not a failure. */
  adminDown(): void {
    if (this.stateValue === BfdState.AdminDown) return;
    this.setState(BfdState.AdminDown, BfdDiagnostic.AdministrativelyDown);
  }

  adminUp(): void {
    if (this.stateValue !== BfdState.AdminDown) return;
    this.setState(BfdState.Down, BfdDiagnostic.None);
  }

  /** New intervals / multiplier; while Up they take effect through a poll sequence (§6.8.3). */
  setOptions(options: ResolvedBfdOptions): void {
    this.options = options;
    this.retarget();
    this.reschedule();
  }

  /**
   * A packet for this session (§6.8.6, from "If the A bit is set" on). Returns why it was
   * discarded, or undefined when it was accepted.
   */
  receive(p: BfdPacket): string | undefined {
    if (p.authentication) return 'authentication is not configured on this session';
    this.remoteDiscriminator = p.myDiscriminator;
    this.remoteState = p.state;
    this.remoteDemand = p.demand;
    this.remoteMinRxUs = p.requiredMinRxUs;
    this.remoteDesiredMinTxUs = p.desiredMinTxUs;
    this.remoteDetectMult = p.detectMult;
    if (p.final && this.polling) {
      this.polling = false;
      this.inForce = this.advertised;
      this.retarget();
    }
    this.lastReceived = this.now();
    this.armDetection();
    if (this.stateValue !== BfdState.AdminDown) {
      const local = this.stateValue;
      if (p.state === BfdState.AdminDown) {
        if (local !== BfdState.Down) this.setState(BfdState.Down, BfdDiagnostic.NeighborSignaledSessionDown);
      } else if (local === BfdState.Down) {
        if (p.state === BfdState.Down) this.setState(BfdState.Init, BfdDiagnostic.None);
        else if (p.state === BfdState.Init) this.setState(BfdState.Up, BfdDiagnostic.None);
      } else if (local === BfdState.Init) {
        if (p.state === BfdState.Init || p.state === BfdState.Up)
          this.setState(BfdState.Up, BfdDiagnostic.None);
      } else if (p.state === BfdState.Down) {
        this.setState(BfdState.Down, BfdDiagnostic.NeighborSignaledSessionDown);
      }
    }
    // A Poll is answered at once, whatever the transmit timer says (§6.8.7).
    if (p.poll) this.transmit(true);
    this.reschedule();
    return this.stateValue === BfdState.AdminDown ? 'session is AdminDown' : undefined;
  }

  status(): BfdSessionStatus {
    const tx = this.txIntervalUs();
    const detect = this.detectionTimeUs();
    return {
      state: this.state,
      remoteState: BFD_STATE_NAMES[this.remoteState],
      diagnostic: diagnosticName(this.diagnostic),
      localDiscriminator: this.localDiscriminator,
      remoteDiscriminator: this.remoteDiscriminator,
      ...(tx !== undefined ? { txIntervalMs: tx / 1000 } : {}),
      ...(detect !== undefined ? { detectionTimeMs: detect / 1000 } : {}),
      multiplier: this.options.multiplier,
      ...(this.remoteDetectMult ? { remoteMultiplier: this.remoteDetectMult } : {}),
      remoteDemand: this.remoteDemand,
    };
  }

  // ------------------------------------------------------------ state

  private setState(next: BfdState, diagnostic: number): void {
    const from = this.stateValue;
    this.diagnostic = diagnostic;
    if (next === from) return;
    this.stateValue = next;
    this.retarget();
    const change: BfdStateChange = {
      from: BFD_STATE_NAMES[from],
      to: BFD_STATE_NAMES[next],
      diagnostic: diagnosticName(diagnostic),
      remoteState: BFD_STATE_NAMES[this.remoteState],
    };
    // Tell the peer without waiting for the (possibly 1 s) timer.
    if (this.running) {
      this.transmit(false);
      this.scheduleTx();
    }
    this.hooks.stateChanged(change);
  }

  /** The intervals our packets should carry in the current state. */
  private target(): Intervals {
    const up = this.stateValue === BfdState.Up;
    const txUs = this.options.desiredMinTxMs * 1000;
    return { txUs: up ? txUs : Math.max(txUs, SLOW_TX_US), rxUs: this.options.requiredMinRxMs * 1000 };
  }

  /** Moves the advertised intervals towards the target: at once when not Up, else by a poll. */
  private retarget(): void {
    const t = this.target();
    if (this.stateValue !== BfdState.Up) {
      this.advertised = this.inForce = t;
      this.polling = false;
      return;
    }
    if (this.polling) return; // one poll at a time; the next starts on its Final
    if (t.txUs !== this.advertised.txUs || t.rxUs !== this.advertised.rxUs) {
      this.advertised = t;
      this.polling = true;
      // A faster tx applies at once (the peer times us out on what we advertise); a slower one
      // only after the Final (§6.8.3).
      if (t.txUs < this.inForce.txUs) this.inForce = { ...this.inForce, txUs: t.txUs };
    }
  }

  // ------------------------------------------------------------ timers

  /** §6.8.7: max(our desired tx in force, the peer's required rx); none when it wants none. */
  private txIntervalUs(): number | undefined {
    if (this.remoteMinRxUs === 0) return undefined;
    // Demand mode asked for by the peer (§6.6): it polls when it wants to hear from us.
    if (this.remoteDemand && this.stateValue === BfdState.Up && this.remoteState === BfdState.Up) {
      return undefined;
    }
    return Math.max(this.inForce.txUs, this.remoteMinRxUs);
  }

  /** §6.8.4: the peer's multiplier × max(our required rx, its desired tx). */
  private detectionTimeUs(): number | undefined {
    if (!this.remoteDetectMult) return undefined;
    // While a poll lowers our required rx, the old (larger) value still bounds detection.
    const rx = Math.max(this.inForce.rxUs, this.advertised.rxUs);
    return this.remoteDetectMult * Math.max(rx, this.remoteDesiredMinTxUs);
  }

  private scheduleTx(): void {
    clearTimeout(this.txTimer);
    this.txTimer = undefined;
    this.scheduledTxUs = this.running ? this.txIntervalUs() : undefined;
    if (this.scheduledTxUs === undefined) return;
    // 75–100 % of the interval, at most 90 % with a multiplier of 1 (§6.8.7).
    const spread = this.options.multiplier === 1 ? 0.15 : 0.25;
    const delayMs = (this.scheduledTxUs / 1000) * (0.75 + this.random() * spread);
    this.txTimer = setTimeout(() => {
      this.transmit(false);
      this.scheduleTx();
    }, delayMs);
  }

  /** Re-plans the next packet only when the interval changed (faster or slower). */
  private reschedule(): void {
    if (this.running && this.txIntervalUs() !== this.scheduledTxUs) this.scheduleTx();
  }

  /**
   * Lazy: a pending timer is kept while it fires no later than the new deadline, and re-armed for
   * the time left when it fires early, so a packet costs no timer churn.
   */
  private armDetection(): void {
    const detect = this.detectionTimeUs();
    if (detect === undefined || !this.running) return;
    const deadline = this.lastReceived + detect / 1000;
    if (this.detectTimer && this.detectFiresAt <= deadline) return;
    this.armDetectionAt(deadline);
  }

  private armDetectionAt(at: number): void {
    clearTimeout(this.detectTimer);
    this.detectFiresAt = at;
    this.detectTimer = setTimeout(
      () => {
        this.detectTimer = undefined;
        const detect = this.detectionTimeUs();
        if (detect === undefined || !this.running) return;
        const deadline = this.lastReceived + detect / 1000;
        if (deadline > this.now()) this.armDetectionAt(deadline);
        else this.detectionExpired();
      },
      Math.max(0, at - this.now()),
    );
  }

  private detectionExpired(): void {
    this.remoteDiscriminator = 0;
    this.remoteState = BfdState.Down;
    this.remoteMinRxUs = 1;
    this.remoteDemand = false;
    this.remoteDetectMult = 0;
    this.remoteDesiredMinTxUs = 0;
    if (this.stateValue === BfdState.Init || this.stateValue === BfdState.Up) {
      this.setState(BfdState.Down, BfdDiagnostic.ControlDetectionTimeExpired);
    }
    this.reschedule();
  }

  private transmit(final: boolean): void {
    this.hooks.send({
      diagnostic: this.diagnostic,
      state: this.stateValue,
      poll: this.polling && !final,
      final,
      controlPlaneIndependent: false,
      demand: false,
      detectMult: this.options.multiplier,
      myDiscriminator: this.localDiscriminator,
      yourDiscriminator: this.remoteDiscriminator,
      desiredMinTxUs: this.advertised.txUs,
      requiredMinRxUs: this.advertised.rxUs,
      requiredMinEchoRxUs: 0,
    });
  }
}
