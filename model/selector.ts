// Kubernetes label selectors (metav1.LabelSelector) with the API's exact semantics:
// - every matchLabels pair and every matchExpressions requirement must hold (AND);
// - an empty selector ({}) matches everything; an absent selector is the caller's business
//   (NetworkPolicy treats an absent podSelector in a peer differently from {}), so
//   `matches` takes a defined selector only;
// - NotIn and DoesNotExist hold for objects that lack the key; In and Exists do not.
import { z } from 'zod';
import { ValidationError } from './errors.js';

export const labelSelectorRequirementSchema = z.object({
  key: z.string().min(1, 'key must not be empty'),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()).optional(),
});

export const labelSelectorSchema = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z.array(labelSelectorRequirementSchema).optional(),
});

export type LabelSelectorRequirement = z.infer<typeof labelSelectorRequirementSchema>;
export type LabelSelector = z.infer<typeof labelSelectorSchema>;
export type Labels = Readonly<Record<string, string>>;

/** Throws ValidationError for operator/values combinations the API server rejects. */
export function validateSelector(selector: LabelSelector, field = 'selector'): void {
  (selector.matchExpressions ?? []).forEach((req, i) => {
    const at = `${field}.matchExpressions[${i}]`;
    const n = req.values?.length ?? 0;
    if ((req.operator === 'In' || req.operator === 'NotIn') && n === 0) {
      throw new ValidationError(`${at}.values`, `must be non-empty when operator is ${req.operator}`);
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && n > 0) {
      throw new ValidationError(`${at}.values`, `must be empty when operator is ${req.operator}`);
    }
  });
}

export function requirementHolds(req: LabelSelectorRequirement, labels: Labels): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, req.key);
  switch (req.operator) {
    case 'In':
      return has && (req.values ?? []).includes(labels[req.key]!);
    case 'NotIn':
      return !has || !(req.values ?? []).includes(labels[req.key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

export function matches(selector: LabelSelector, labels: Labels | undefined): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (l[k] !== v) return false;
  }
  return (selector.matchExpressions ?? []).every((req) => requirementHolds(req, l));
}

export function isEmptySelector(selector: LabelSelector): boolean {
  return (
    Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0
  );
}
