import tseslint from 'typescript-eslint';
import tern from './scripts/lint/arrows.js';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'test-results/**'] },
  ...tseslint.configs.recommended,
  {
    plugins: { tern },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      'tern/arrows': 'error',
    },
  },
);
