// Flat config: typescript-eslint's recommended rules on top of eslint's, for every project folder.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['node_modules/', '.stack/', 'test-artifacts/', 'dist/', '.venv/', '.schemathesis/', 'vendor/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // An interface that only extends another is how a module adds to a shared one by declaration
      // merging (a simulator resource module's scale knobs and ground truth: sim/serve.ts SimResource).
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
    },
  },
);
