// ESLint flat config: the recommended JavaScript and typescript-eslint rules, plus the few project
// conventions a reviewer would otherwise have to remember.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', 'coverage/', 'bench/results/', 'test-artifacts/', 'grafana/', 'alerts/', 'deploy/k8s/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        clearImmediate: 'readonly',
        performance: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        fetch: 'readonly',
        WebSocket: 'readonly',
        globalThis: 'readonly',
      },
    },
    rules: {
      // One private-member style: ECMAScript `#private` (enforced at run time, not only by tsc).
      // A `private constructor` stays allowed: `#constructor` does not exist.
      'no-restricted-syntax': [
        'error',
        {
          selector: ':matches(PropertyDefinition, TSParameterProperty, TSAbstractPropertyDefinition)[accessibility="private"]',
          message: 'Use an ECMAScript #private member, not the TypeScript `private` keyword.',
        },
        {
          selector: 'MethodDefinition[accessibility="private"][kind!="constructor"]',
          message: 'Use an ECMAScript #private method, not the TypeScript `private` keyword.',
        },
      ],
      // Late-bound state read by callbacks created before it exists (startServer's gateway, store).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
    },
  },
);
