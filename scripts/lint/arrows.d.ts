import type { Rule } from 'eslint';

export declare const ARROWS: Readonly<Record<string, readonly string[]>>;
export declare const arrowsRule: Rule.RuleModule;
declare const plugin: { rules: { arrows: Rule.RuleModule } };
export default plugin;
