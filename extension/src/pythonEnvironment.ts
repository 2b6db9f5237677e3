// The interpreter selected in the Python extension (ms-python.python), when it is installed. Only the
// one call used here is typed; the extension is asked only when the server is found nowhere else.

import * as vscode from 'vscode';

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
  };
}

export async function selectedPython(resource?: vscode.Uri): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (extension === undefined) {
    return undefined;
  }
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    return api.environments?.getActiveEnvironmentPath(resource)?.path || undefined;
  } catch {
    return undefined;
  }
}
