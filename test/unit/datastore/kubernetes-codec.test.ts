// Decoding API objects into the model and encoding writes: validation both ways, and metadata
// the model does not know survives a read-modify-write.
import { describe, expect, it } from 'vitest';
import { decodeObject, encodeObject } from '../../../datastore/kubernetes/codec.js';
import { ValidationError, type Pod } from '../../../model/index.js';

describe('decodeObject', () => {
  it('fills apiVersion and kind that built-in list items leave out', () => {
    const pod = decodeObject('Pod', {
      metadata: { name: 'x', namespace: 'a', resourceVersion: '7' },
      spec: { containers: [{ name: 'c' }] },
    });
    expect(pod).toMatchObject({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'x', resourceVersion: '7' },
    });
    const np = decodeObject('NetworkPolicy', {
      metadata: { name: 'd', namespace: 'a' },
      spec: { podSelector: {} },
    });
    expect(np.apiVersion).toBe('networking.k8s.io/v1');
  });

  it('keeps metadata fields the model does not know on the decoded object', () => {
    const owner = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1', controller: true }];
    const pod = decodeObject('Pod', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'x', namespace: 'a', ownerReferences: owner, finalizers: ['f'], generateName: 'x-' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    expect(pod.metadata).toMatchObject({ ownerReferences: owner, finalizers: ['f'], generateName: 'x-' });
    expect(pod.spec?.containers[0]).toMatchObject({ image: 'busybox' }); // Pod's schema is loose
  });

  it('refuses an object the model refuses, naming the field', () => {
    const err = (() => {
      try {
        decodeObject('IPPool', {
          apiVersion: 'tern.network/v1',
          kind: 'IPPool',
          metadata: { name: 'p' },
          spec: { cidr: 'x' },
        });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('spec.cidr');
    expect(() => decodeObject('Pod', 'not an object')).toThrow(ValidationError);
  });
});

describe('encodeObject', () => {
  it('sends back the unknown metadata of the input with the validated object, so a PUT strips nothing', () => {
    const input = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'x', namespace: 'a', finalizers: ['keep-me'], labels: { app: 'a' } },
      spec: { containers: [{ name: 'c' }] },
    } as Pod;
    const validated = {
      ...input,
      metadata: { name: 'x', namespace: 'a', labels: { app: 'b' } },
    } as Pod;
    expect(encodeObject(validated, input)).toEqual({
      ...input,
      metadata: { name: 'x', namespace: 'a', finalizers: ['keep-me'], labels: { app: 'b' } },
    });
  });
});
