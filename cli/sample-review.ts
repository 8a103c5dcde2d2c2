// What kube-apiserver sends for a Sonarr pod created by its ReplicaSet in a namespace that opted
// in: defaults filled in, a projected service-account volume, an NFS media mount. `serve --dev`
// writes it to .dev/sample-review.json so a developer can POST it with curl.
export function sampleAdmissionReview(): Record<string, unknown> {
  return {
  'apiVersion': 'admission.k8s.io/v1',
  'kind': 'AdmissionReview',
  'request': {
    'uid': '0b9f3a1e-5c2d-4e8f-9a7b-6d1c2e3f4a5b',
    'kind': {
      'group': '',
      'version': 'v1',
      'kind': 'Pod'
    },
    'resource': {
      'group': '',
      'version': 'v1',
      'resource': 'pods'
    },
    'requestKind': {
      'group': '',
      'version': 'v1',
      'kind': 'Pod'
    },
    'requestResource': {
      'group': '',
      'version': 'v1',
      'resource': 'pods'
    },
    'namespace': 'media',
    'operation': 'CREATE',
    'userInfo': {
      'username': 'system:serviceaccount:kube-system:replicaset-controller',
      'uid': '8c4d2f6e-1a3b-4c5d-9e7f-0a1b2c3d4e5f',
      'groups': [
        'system:serviceaccounts',
        'system:serviceaccounts:kube-system',
        'system:authenticated'
      ]
    },
    'object': {
      'apiVersion': 'v1',
      'kind': 'Pod',
      'metadata': {
        'generateName': 'sonarr-7d9f8b6c5d-',
        'namespace': 'media',
        'labels': {
          'app.kubernetes.io/name': 'sonarr',
          'pod-template-hash': '7d9f8b6c5d',
          'dfs-injector.io/role': 'consumer'
        },
        'annotations': {
          'kubectl.kubernetes.io/restartedAt': '2026-11-20T08:14:02Z'
        },
        'ownerReferences': [
          {
            'apiVersion': 'apps/v1',
            'kind': 'ReplicaSet',
            'name': 'sonarr-7d9f8b6c5d',
            'uid': '5b0c1e6a-9f1e-4c55-a2a4-2f8f4e3a9b11',
            'controller': true,
            'blockOwnerDeletion': true
          }
        ]
      },
      'spec': {
        'restartPolicy': 'Always',
        'terminationGracePeriodSeconds': 30,
        'dnsPolicy': 'ClusterFirst',
        'serviceAccountName': 'default',
        'serviceAccount': 'default',
        'securityContext': {
          'fsGroup': 1000,
          'runAsUser': 1000,
          'runAsGroup': 1000,
          'runAsNonRoot': true,
          'fsGroupChangePolicy': 'OnRootMismatch',
          'seccompProfile': {
            'type': 'RuntimeDefault'
          }
        },
        'schedulerName': 'default-scheduler',
        'tolerations': [
          {
            'key': 'node.kubernetes.io/not-ready',
            'operator': 'Exists',
            'effect': 'NoExecute',
            'tolerationSeconds': 300
          },
          {
            'key': 'node.kubernetes.io/unreachable',
            'operator': 'Exists',
            'effect': 'NoExecute',
            'tolerationSeconds': 300
          }
        ],
        'priority': 0,
        'enableServiceLinks': true,
        'preemptionPolicy': 'PreemptLowerPriority',
        'containers': [
          {
            'terminationMessagePath': '/dev/termination-log',
            'terminationMessagePolicy': 'File',
            'imagePullPolicy': 'IfNotPresent',
            'name': 'sonarr',
            'image': 'lscr.io/linuxserver/sonarr:4.0.16',
            'ports': [
              {
                'name': 'http',
                'containerPort': 8989,
                'protocol': 'TCP'
              }
            ],
            'env': [
              {
                'name': 'TZ',
                'value': 'Europe/Berlin'
              },
              {
                'name': 'PUID',
                'value': '1000'
              },
              {
                'name': 'PGID',
                'value': '1000'
              }
            ],
            'resources': {
              'requests': {
                'cpu': '100m',
                'memory': '256Mi'
              },
              'limits': {
                'memory': '1Gi'
              }
            },
            'volumeMounts': [
              {
                'name': 'config',
                'mountPath': '/config'
              },
              {
                'name': 'media',
                'mountPath': '/mnt/streaming-media'
              },
              {
                'name': 'tmp',
                'mountPath': '/tmp'
              },
              {
                'name': 'kube-api-access-x7k2p',
                'readOnly': true,
                'mountPath': '/var/run/secrets/kubernetes.io/serviceaccount'
              }
            ],
            'livenessProbe': {
              'httpGet': {
                'path': '/ping',
                'port': 'http',
                'scheme': 'HTTP'
              },
              'initialDelaySeconds': 30,
              'timeoutSeconds': 1,
              'periodSeconds': 10,
              'successThreshold': 1,
              'failureThreshold': 3
            },
            'readinessProbe': {
              'httpGet': {
                'path': '/ping',
                'port': 'http',
                'scheme': 'HTTP'
              },
              'timeoutSeconds': 1,
              'periodSeconds': 10,
              'successThreshold': 1,
              'failureThreshold': 3
            },
            'securityContext': {
              'readOnlyRootFilesystem': true,
              'allowPrivilegeEscalation': false,
              'capabilities': {
                'drop': [
                  'ALL'
                ]
              }
            }
          }
        ],
        'volumes': [
          {
            'name': 'config',
            'persistentVolumeClaim': {
              'claimName': 'sonarr-config'
            }
          },
          {
            'name': 'media',
            'nfs': {
              'server': 'nas.home.arpa',
              'path': '/volume1/streaming-media'
            }
          },
          {
            'name': 'tmp',
            'emptyDir': {}
          },
          {
            'name': 'kube-api-access-x7k2p',
            'projected': {
              'defaultMode': 420,
              'sources': [
                {
                  'serviceAccountToken': {
                    'expirationSeconds': 3607,
                    'path': 'token'
                  }
                },
                {
                  'configMap': {
                    'name': 'kube-root-ca.crt',
                    'items': [
                      {
                        'key': 'ca.crt',
                        'path': 'ca.crt'
                      }
                    ]
                  }
                },
                {
                  'downwardAPI': {
                    'items': [
                      {
                        'path': 'namespace',
                        'fieldRef': {
                          'apiVersion': 'v1',
                          'fieldPath': 'metadata.namespace'
                        }
                      }
                    ]
                  }
                }
              ]
            }
          }
        ]
      }
    },
    'oldObject': null,
    'dryRun': false,
    'options': {
      'apiVersion': 'meta.k8s.io/v1',
      'kind': 'CreateOptions'
    }
  }
};
}
