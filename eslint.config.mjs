// Lint gates that keep the habits (DESIGN.md): promises awaited or handled, no import cycles, the
// verifier executable on node builtins only. Type-aware: uses tsconfig.json.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'man/**', 'completion/**', 'test/fixtures/**', '**/*.cjs', '**/*.mjs'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'scripts/**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      'import-x/no-cycle': ['error', { maxDepth: 10 }],
      'no-var': 'error',
      'prefer-const': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // signet-verifier runs once per pull: its import graph stays on node builtins and src/verifier/.
    files: ['src/cli/signet-verifier.ts', 'src/verifier/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(?!node:|\\./|\\.\\./verifier/)', message: 'the verifier imports node builtins and src/verifier/ only (start-up time)' },
            { regex: '^\\.\\./(?!verifier/)', message: 'the verifier imports node builtins and src/verifier/ only' },
          ],
        },
      ],
    },
  },
);
